package persistence

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Securing the connections to Kafka: TLS (server verification, optionally a
// client certificate) and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512). orderd
// and orderctl tail share this, so that one environment configures both.
//
// TLS is done in the dial function, beneath everything else, so that every
// connection, kafka-go's and the log reader's own (fetch_raw.go), is secured
// by the same code. SASL is above it: kafka-go's Transport.SASL and
// Dialer.SASLMechanism, and fetch_raw.go's own exchange.

// The SASL mechanisms orderd speaks, named as Kafka names them.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// EnvSASLPassword is the environment variable that may carry the SASL
// password, instead of a file. There is no flag for it: a command line is
// visible to every user of the machine (ps, /proc).
const EnvSASLPassword = "ORDERD_KAFKA_SASL_PASSWORD"

// Limits of the files read.
const (
	// securityFileBytesMax bounds a CA, certificate, key or password
	// file: a CA bundle of a few hundred certificates is under a
	// megabyte; anything larger is the wrong file.
	securityFileBytesMax = 4 << 20
	// saslPasswordBytesMax bounds a password, so that a password file
	// that is really something else is refused instead of sent.
	saslPasswordBytesMax = 1024
)

// Errors that name what went wrong when the broker refused us; the
// underlying error follows them in the message.
var (
	ErrSASLAuthFailed = errors.New("SASL authentication failed (wrong username or password?)")
	ErrSASLMechanism  = errors.New("SASL mechanism refused by the broker")
	ErrTLSUntrusted   = errors.New("TLS: the broker's certificate is not trusted")
	ErrTLSWrongName   = errors.New("TLS: the broker's certificate is not valid for the name it was reached by (see the TLS server name setting)")
	ErrTLSRefused     = errors.New("TLS: the broker refused the connection (a client certificate missing or not trusted by the broker?)")
	ErrTLSNotTLS      = errors.New("TLS: the broker does not speak TLS on this port")
	ErrTLSNoAnswer    = errors.New("TLS: the broker did not answer the handshake (is this its TLS port?)")
	ErrBrokerHungUp   = errors.New("the broker closed the connection (does it require TLS or SASL?)")
	errTLSHandshake   = errors.New("TLS handshake failed")
)

// Secret is a string that never prints: fmt, slog and encoders see
// "[redacted]". Only Reveal gives the value.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) } // every verb, %#v too
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the secret itself, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// SecurityConfig is how to secure the connections: names of files and
// settings, as the flags give them. Load reads the files.
type SecurityConfig struct {
	// FlagPrefix is how the flags of these settings begin, for error
	// messages: "--kafka-" for orderd, "--" for orderctl tail.
	FlagPrefix string

	// TLS turns TLS on with the system's roots; any TLS setting below
	// turns it on as well.
	TLS           bool
	TLSCAFile     string // PEM certificates to trust instead of the system's roots
	TLSCertFile   string // PEM client certificate, with TLSKeyFile
	TLSKeyFile    string
	TLSServerName string // the name to verify the broker's certificate for; the broker's host if empty

	SASLMechanism    string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL
	SASLUsername     string
	SASLPasswordFile string // the password, alone in a file (a final newline is not part of it)
	SASLPassword     Secret // the password from the environment (EnvSASLPassword)
}

// TLSEnabled reports whether the connections use TLS.
func (c SecurityConfig) TLSEnabled() bool {
	return c.TLS || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSServerName != ""
}

// Enabled reports whether anything is configured.
func (c SecurityConfig) Enabled() bool {
	return c.TLSEnabled() || c.SASLMechanism != "" || c.SASLUsername != "" || c.SASLPasswordFile != "" || c.SASLPassword != ""
}

func (c SecurityConfig) flag(name string) string { return c.FlagPrefix + name }

// Check validates the settings without reading any file.
func (c SecurityConfig) Check() error {
	var errs []error
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together: give both or neither", c.flag("tls-cert-file"), c.flag("tls-key-file")))
	}
	mech := strings.ToUpper(c.SASLMechanism)
	switch {
	case mech == "" && (c.SASLUsername != "" || c.SASLPasswordFile != "" || c.SASLPassword != ""):
		errs = append(errs, fmt.Errorf("a SASL username or password is given without %s: say which mechanism", c.flag("sasl-mechanism")))
	case mech == "":
	case mech != SASLPlain && mech != SASLScramSHA256 && mech != SASLScramSHA512:
		errs = append(errs, fmt.Errorf("%s %q: want %s, %s or %s", c.flag("sasl-mechanism"), c.SASLMechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512))
	default:
		if c.SASLUsername == "" {
			errs = append(errs, fmt.Errorf("%s is required with %s", c.flag("sasl-username"), c.flag("sasl-mechanism")))
		}
		switch {
		case c.SASLPasswordFile != "" && c.SASLPassword != "":
			errs = append(errs, fmt.Errorf("the SASL password is given both in %s and in %s: choose one", c.flag("sasl-password-file"), EnvSASLPassword))
		case c.SASLPasswordFile == "" && c.SASLPassword == "":
			errs = append(errs, fmt.Errorf("%s needs a password: give %s or set %s", c.flag("sasl-mechanism"), c.flag("sasl-password-file"), EnvSASLPassword))
		}
	}
	return errors.Join(errs...)
}

// Security is a loaded SecurityConfig: what the connections use. A nil
// *Security is plaintext without SASL.
type Security struct {
	tls      *tls.Config    // nil: plaintext
	sasl     sasl.Mechanism // nil: no SASL
	describe string         // for logs: what is on, never a secret
}

// Load checks the settings, reads the files and builds the TLS
// configuration and the SASL mechanism. Nothing configured is (nil, nil).
// Errors name the flag and the file.
func (c SecurityConfig) Load() (*Security, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, nil
	}
	s := &Security{}
	var what []string
	if c.TLSEnabled() {
		cfg, desc, err := c.loadTLS()
		if err != nil {
			return nil, err
		}
		s.tls = cfg
		what = append(what, desc)
	}
	if c.SASLMechanism != "" {
		mech, err := c.loadSASL()
		if err != nil {
			return nil, err
		}
		s.sasl = mech
		what = append(what, fmt.Sprintf("SASL %s as %q", mech.Name(), c.SASLUsername))
	}
	s.describe = strings.Join(what, ", ")
	return s, nil
}

func (c SecurityConfig) loadTLS() (*tls.Config, string, error) {
	cfg := &tls.Config{
		// TLS 1.0 and 1.1 are deprecated (RFC 8996); every Kafka
		// broker in support speaks 1.2 or 1.3.
		MinVersion: tls.VersionTLS12,
		ServerName: c.TLSServerName,
	}
	desc := "TLS (system roots)"
	if c.TLSCAFile != "" {
		pem, err := readSecurityFile(c.flag("tls-ca-file"), c.TLSCAFile)
		if err != nil {
			return nil, "", err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("%s %s: no PEM certificate in it", c.flag("tls-ca-file"), c.TLSCAFile)
		}
		cfg.RootCAs = pool
		desc = "TLS (CA file " + c.TLSCAFile + ")"
	}
	if c.TLSCertFile != "" {
		certPEM, err := readSecurityFile(c.flag("tls-cert-file"), c.TLSCertFile)
		if err != nil {
			return nil, "", err
		}
		keyPEM, err := readSecurityFile(c.flag("tls-key-file"), c.TLSKeyFile)
		if err != nil {
			return nil, "", err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// X509KeyPair's errors name neither file, and never
			// quote the key.
			return nil, "", fmt.Errorf("%s %s and %s %s: %w", c.flag("tls-cert-file"), c.TLSCertFile, c.flag("tls-key-file"), c.TLSKeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
		desc += " with a client certificate"
	}
	return cfg, desc, nil
}

func (c SecurityConfig) loadSASL() (sasl.Mechanism, error) {
	password := c.SASLPassword.Reveal()
	if c.SASLPasswordFile != "" {
		b, err := readSecurityFile(c.flag("sasl-password-file"), c.SASLPasswordFile)
		if err != nil {
			return nil, err
		}
		// An editor's final newline is not part of the password.
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			return nil, fmt.Errorf("%s %s: the file is empty", c.flag("sasl-password-file"), c.SASLPasswordFile)
		}
	}
	if len(password) > saslPasswordBytesMax {
		return nil, fmt.Errorf("the SASL password is longer than %d bytes: is %s the right file?", saslPasswordBytesMax, c.flag("sasl-password-file"))
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case SASLPlain:
		return plain.Mechanism{Username: c.SASLUsername, Password: password}, nil
	case SASLScramSHA256:
		return scramMechanism(scram.SHA256, c.SASLUsername, password)
	default: // SASLScramSHA512; Check refused anything else
		return scramMechanism(scram.SHA512, c.SASLUsername, password)
	}
}

func scramMechanism(algo scram.Algorithm, user, password string) (sasl.Mechanism, error) {
	m, err := scram.Mechanism(algo, user, password)
	if err != nil {
		// SASLprep refuses some characters; the error does not quote
		// the password.
		return nil, fmt.Errorf("SASL %s: the username or password cannot be used: %w", algo.Name(), err)
	}
	return m, nil
}

// readSecurityFile reads one of the files, naming the flag in its error.
func readSecurityFile(flag, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, securityFileBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if len(b) > securityFileBytesMax {
		return nil, fmt.Errorf("%s %s: larger than %d bytes", flag, path, securityFileBytesMax)
	}
	return b, nil
}

// String says what is on, for logs: never a secret.
func (s *Security) String() string {
	if s == nil {
		return "plaintext, no SASL"
	}
	return s.describe
}

// SASL returns the mechanism for kafka-go's Transport.SASL and
// Dialer.SASLMechanism; nil without SASL.
func (s *Security) SASL() sasl.Mechanism {
	if s == nil {
		return nil
	}
	return s.sasl
}

// Dial returns dial (TCP if nil) with TLS beneath whatever the caller puts
// on the connection. Without TLS it returns dial unchanged, nil included.
func (s *Security) Dial(dial func(ctx context.Context, network, address string) (net.Conn, error)) func(ctx context.Context, network, address string) (net.Conn, error) {
	if s == nil || s.tls == nil {
		return dial
	}
	if dial == nil {
		dial = dialTCP
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		raw, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		cfg := s.tls
		if cfg.ServerName == "" {
			// Verify the certificate for the host we dialled, as
			// kafka-go's own TLS does.
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				host = address
			}
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		conn := tls.Client(raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		if err := conn.HandshakeContext(hctx); err != nil {
			_ = raw.Close()
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, ctx.Err() // the caller gave up: nothing to explain
			}
			if hctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				// A plaintext Kafka port reads the ClientHello as the
				// size of a request and waits for the rest, or hangs up.
				return nil, fmt.Errorf("%s: %w: %w", address, ErrTLSNoAnswer, err)
			}
			return nil, fmt.Errorf("%s: %w", address, explainTLS(err))
		}
		return &tlsConn{Conn: conn}, nil
	}
}

// tlsConn explains an alert the broker sends after the handshake: with TLS
// 1.3 the client's handshake is done before the broker has looked at the
// client's certificate, so a refused certificate shows on the first read.
type tlsConn struct{ *tls.Conn }

func (c *tlsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && isRemoteAlert(err) {
		err = fmt.Errorf("%w (%w)", ErrTLSRefused, err)
	}
	return n, err
}

// isRemoteAlert reports whether err is a TLS alert from the peer: crypto/tls
// returns those as a *net.OpError with Op "remote error".
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// explainTLS says in words why a handshake failed.
func explainTLS(err error) error {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var header tls.RecordHeaderError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w (%w)", ErrTLSUntrusted, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("%w (%w)", ErrTLSWrongName, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("%w: it is invalid (%w)", ErrTLSUntrusted, err)
	case errors.As(err, &header):
		return fmt.Errorf("%w (%w)", ErrTLSNotTLS, err)
	case isRemoteAlert(err):
		return fmt.Errorf("%w (%w)", ErrTLSRefused, err)
	}
	return fmt.Errorf("%w: %w", errTLSHandshake, err)
}

// ExplainBrokerError puts in words why the broker refused a client that s
// secures: a failed SASL exchange, a mechanism the broker does not enable,
// or a broker that hangs up on a client without the TLS or SASL it wants.
// TLS failures are already explained by the dial function. Any other error
// is returned as it is.
//
// A broker may answer a failed SASL exchange by closing the connection
// (kfake does; Kafka sends SASL_AUTHENTICATION_FAILED first), which kafka-go
// reports as a bare EOF. For such an error ExplainBrokerError runs the SASL
// exchange alone on a new connection to addr (dialled with dial, as the
// client's were), to learn whether authentication is what fails.
func (s *Security) ExplainBrokerError(ctx context.Context, dial func(ctx context.Context, network, address string) (net.Conn, error), addr string, err error) error {
	hungUp := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrSASLAuthFailed), errors.Is(err, ErrSASLMechanism), errors.Is(err, ErrBrokerHungUp):
		return err // explained already
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Errorf("%w: %w", ErrSASLAuthFailed, err)
	case s.SASL() == nil && hungUp:
		return fmt.Errorf("%w: %w", ErrBrokerHungUp, err)
	case s.SASL() == nil:
		return err
	case errors.Is(err, kafka.UnsupportedSASLMechanism), errors.Is(err, kafka.IllegalSASLState):
		return fmt.Errorf("%w (%s): %w", ErrSASLMechanism, s.SASL().Name(), err)
	case hungUp:
		if probe := s.probeSASL(ctx, dial, addr); errors.Is(probe, ErrSASLAuthFailed) || errors.Is(probe, ErrSASLMechanism) {
			return fmt.Errorf("%w (%w)", probe, err)
		}
	}
	return err
}

// probeSASL connects to addr and runs the SASL exchange alone, with the raw
// fetch path's code (fetch_raw.go): an error matching ErrSASLAuthFailed or
// ErrSASLMechanism says the credentials are what the broker refuses.
func (s *Security) probeSASL(ctx context.Context, dial func(ctx context.Context, network, address string) (net.Conn, error), addr string) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if dial = s.Dial(dial); dial == nil {
		dial = dialTCP
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	f := &rawFetcher{conn: conn, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)), fetchBytes: fetchBytesMax}
	defer f.close()
	versions, err := f.apiVersions(ctx)
	if err != nil {
		return err
	}
	return f.authenticate(ctx, s.sasl, addr, versions)
}
