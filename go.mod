module github.com/orderd/orderd

go 1.26.8

// Pins, and why (see ../shared/FACTS.md for the measurements behind them):
require (
	// bench/'s latency histograms; the newest tag.
	github.com/HdrHistogram/hdrhistogram-go v1.1.2
	// Linearizability checking in cmd/orderd's tests; the newest tag.
	github.com/anishathalye/porcupine v1.3.1
	// The newest commit there is; the project is unmaintained since 2024.
	github.com/asynkron/protoactor-go v0.0.0-20240822202345-3c0e61ca19c9
	// persistence/store's local state store (issue 18). Pure Go as the
	// Dockerfile builds it (CGO_ENABLED=0); with cgo it also links
	// DataDog/zstd's C code, which the store's options never use.
	github.com/cockroachdb/pebble/v2 v2.1.7
	// v2 as designed; v3 changed the API. 2.52.15 is the patched v2 line.
	github.com/gofiber/fiber/v2 v2.52.15
	// persistence's bounded snappy and zstd readers; the version the build
	// already selected for kafka-go and franz-go, so all read with one code.
	github.com/klauspost/compress v1.20.3
	// Metrics at GET /metrics; the version protoactor-go already pulls in.
	github.com/prometheus/client_golang v1.17.0
	// cmd/orderd's and persistence's tests parse scrapes with these; the
	// versions client_golang v1.17.0 requires.
	github.com/prometheus/client_model v0.5.0
	github.com/prometheus/common v0.44.0
	// http's tests validate responses against the OpenAPI 3.1 document's
	// schemas, which are JSON Schema 2020-12; the newest tag.
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.2
	// orderctl tail's progress bar; the newest tag, fewer modules than mpb/v8.
	github.com/schollz/progressbar/v3 v3.19.1
	// The version whose defaults and bugs FACTS.md measured.
	github.com/segmentio/kafka-go v0.4.51
	github.com/stretchr/testify v1.12.1
	// kfake@20260918 does not compile against the franz-go its own go.mod
	// names: it needs v1.22.2 or newer alongside it.
	github.com/twmb/franz-go v1.22.2
	github.com/twmb/franz-go/pkg/kfake v0.0.0-20260918054303-01f206a7e32c
	github.com/twmb/franz-go/pkg/kmsg v1.15.0
	// bench/'s HTTP client; the version Fiber v2.52.15 requires.
	github.com/valyala/fasthttp v1.51.0
	// cmd/orderd's tests read docker-compose.yml; the version already in
	// the build (through testify), so nothing new is fetched.
	go.yaml.in/yaml/v3 v3.0.5
	// http's per-principal token buckets; the newest tag (the build had
	// v0.3.0 through protoactor-go's dependencies).
	golang.org/x/time v0.16.0
)

require (
	github.com/DataDog/zstd v1.5.7 // indirect
	github.com/RaduBerinde/axisds v0.1.0 // indirect
	github.com/RaduBerinde/btreemap v0.0.0-20250419174037-3d62b7205d54 // indirect
	github.com/Workiva/go-datastructures v1.1.3 // indirect
	github.com/andybalholm/brotli v1.1.0 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.2.0 // indirect
	github.com/cockroachdb/crlib v0.0.0-20241112164430-1264a2edc35b // indirect
	github.com/cockroachdb/errors v1.11.3 // indirect
	github.com/cockroachdb/logtags v0.0.0-20230118201751-21c54148d20b // indirect
	github.com/cockroachdb/redact v1.1.5 // indirect
	github.com/cockroachdb/swiss v0.0.0-20260820225851-333444432258 // indirect
	github.com/cockroachdb/tokenbucket v0.0.0-20230807174530-cc333fc44b06 // indirect
	github.com/emirpasic/gods v1.18.1 // indirect
	github.com/getsentry/sentry-go v0.27.0 // indirect
	github.com/go-logr/logr v1.3.0 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/golang/protobuf v1.5.3 // indirect
	github.com/golang/snappy v0.0.5-0.20231225225746-43d5d4cd4e0e // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/kr/pretty v0.3.1 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/lithammer/shortuuid/v4 v4.0.0 // indirect
	github.com/lmittmann/tint v1.0.3 // indirect
	github.com/mattn/go-colorable v0.1.13 // indirect
	github.com/mattn/go-isatty v0.0.22 // indirect
	github.com/mattn/go-runewidth v0.0.16 // indirect
	github.com/matttproud/golang_protobuf_extensions v1.0.4 // indirect
	github.com/minio/minlz v1.0.1-0.20250507153514-87eb42fe8882 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/orcaman/concurrent-map v1.0.0 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/prometheus/procfs v0.11.1 // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	github.com/rogpeppe/go-internal v1.11.0 // indirect
	github.com/twmb/murmur3 v1.1.8 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	github.com/valyala/tcplisten v1.0.0 // indirect
	github.com/xdg-go/pbkdf2 v1.0.0 // indirect
	github.com/xdg-go/scram v1.1.2 // indirect
	github.com/xdg-go/stringprep v1.0.4 // indirect
	go.opentelemetry.io/otel v1.21.0 // indirect
	go.opentelemetry.io/otel/exporters/prometheus v0.44.0 // indirect
	go.opentelemetry.io/otel/metric v1.21.0 // indirect
	go.opentelemetry.io/otel/sdk v1.21.0 // indirect
	go.opentelemetry.io/otel/sdk/metric v1.21.0 // indirect
	go.opentelemetry.io/otel/trace v1.21.0 // indirect
	golang.org/x/exp v0.0.0-20231110203233-9a3e6036ecaa // indirect
	golang.org/x/sys v0.46.0 // indirect
	golang.org/x/term v0.44.0 // indirect
	golang.org/x/text v0.23.0 // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)
