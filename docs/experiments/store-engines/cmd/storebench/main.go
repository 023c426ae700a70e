// Command storebench measures pebble and bbolt with the state store's access
// pattern (issue 18). Subcommands:
//
//	feed    -engine E -dir D -orders N      feed N orders × 4 events from the checkpoint on
//	check   -engine E -dir D                open, time it, and check data against the checkpoint
//	lookup  -engine E -dir D -orders N      open, 10,000 random cold lookups, latencies and RSS
//	crash   -engine E -dir D -orders N -kill-at R   feed in a child, SIGKILL it past record R, check in another child
//	corrupt -engine E -dir D -file F -offset O      flip a byte, then open, look up, scan and check
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	bolt "go.etcd.io/bbolt"

	"orderd-experiments/storeengines/bolteng"
	"orderd-experiments/storeengines/pebbleeng"
	"orderd-experiments/storeengines/workload"
)

var (
	engine   = flag.String("engine", "pebble", "pebble or bbolt")
	dir      = flag.String("dir", "", "data directory")
	orders   = flag.Uint64("orders", 1_000_000, "orders (a multiple of 1,000)")
	batch    = flag.Uint64("batch", 1000, "records per batch")
	cacheMiB = flag.Int64("cache-mib", 32, "pebble's block cache")
	memMiB   = flag.Uint64("memtable-mib", 0, "pebble's memtable size (0: its default, 4 MiB)")
	sync     = flag.Bool("sync", false, "bbolt: fsync every commit")
	progress = flag.Bool("progress", false, "feed: print the checkpoint after each batch")
	killAt   = flag.Uint64("kill-at", 2_000_000, "crash: SIGKILL the feeder once its checkpoint is past this")
	jitter   = flag.Duration("kill-jitter", 0, "crash: wait a random time below this before the SIGKILL")
	lookups  = flag.Int("lookups", 10_000, "lookup: how many")
	evict    = flag.Bool("evict", false, "lookup: drop the store's files from the page cache first")
	file     = flag.String("file", "", "corrupt: the file, relative to -dir")
	offset   = flag.Int64("offset", -1, "corrupt: the byte to flip (-1: the middle)")
	cpuprof  = flag.String("cpuprofile", "", "feed: write a CPU profile")
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: storebench feed|check|lookup|crash|corrupt [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	flag.CommandLine.Parse(os.Args[2:])
	var err error
	switch cmd {
	case "feed":
		err = feed()
	case "check":
		err = check()
	case "lookup":
		err = lookup()
	case "crash":
		err = crash()
	case "corrupt":
		err = corrupt()
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Println("ERROR:", err)
		os.Exit(1)
	}
}

func open() (workload.Engine, error) {
	switch *engine {
	case "pebble":
		db, err := pebbleeng.Open(*dir, *cacheMiB<<20, *memMiB<<20)
		if err != nil {
			return nil, err
		}
		return db, nil
	case "bbolt":
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return nil, err
		}
		db, err := bolteng.Open(filepath.Join(*dir, "store.db"), !*sync)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	return nil, fmt.Errorf("unknown engine %q", *engine)
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func diskBytes() (n int64) {
	filepath.WalkDir(*dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Sys().(*syscall.Stat_t).Blocks * 512
			}
		}
		return nil
	})
	return n
}

func status() string {
	b, _ := os.ReadFile("/proc/self/status")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, f := range []string{"VmRSS", "VmHWM", "RssAnon", "RssFile"} {
			if strings.HasPrefix(l, f+":") {
				out = append(out, f+"="+strings.Join(strings.Fields(l)[1:], ""))
			}
		}
	}
	return strings.Join(out, " ")
}

func feed() error {
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	t0, c0 := time.Now(), cpu()
	e, err := open()
	if err != nil {
		return err
	}
	opened := time.Since(t0)
	from, err := workload.Checkpoint(e)
	if err != nil {
		return err
	}
	end := *orders * workload.EventsPerOrder
	t1, c1 := time.Now(), cpu()
	for i := from; i < end; i += *batch {
		to := min(i+*batch, end)
		if err := e.Update(func(w workload.Writer) error { return workload.ApplyBatch(w, i, to) }); err != nil {
			return err
		}
		if *progress {
			fmt.Println("at", to)
		}
	}
	fed, fc := time.Since(t1), cpu()-c1
	t2 := time.Now()
	if err := e.Close(); err != nil {
		return err
	}
	closed := time.Since(t2)
	n := end - from
	fmt.Printf("feed engine=%s records=%d open=%v wall=%.1fs records/s=%.0f cpu=%.1fs cpu_per_1M_records=%.1fs close=%v total_cpu=%.1fs disk=%.0fMiB %s\n",
		*engine, n, opened.Round(time.Millisecond), fed.Seconds(), float64(n)/fed.Seconds(), fc.Seconds(), fc.Seconds()/float64(n)*1e6,
		closed.Round(time.Millisecond), (cpu() - c0).Seconds(), float64(diskBytes())/(1<<20), status())
	return nil
}

func check() error {
	t0 := time.Now()
	e, err := open()
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	opened := time.Since(t0)
	cp, err := workload.Checkpoint(e)
	ready := time.Since(t0)
	if err != nil {
		return err
	}
	t1 := time.Now()
	_, cerr := workload.Check(e)
	fmt.Printf("check engine=%s open=%v open+checkpoint=%v checkpoint=%d agree=%v (%v) check_took=%.1fs disk=%.0fMiB %s\n",
		*engine, opened.Round(time.Microsecond), ready.Round(time.Microsecond), cp, cerr == nil, cerr, time.Since(t1).Seconds(), float64(diskBytes())/(1<<20), status())
	return e.Close()
}

func evictDir() error {
	return filepath.WalkDir(*dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		const fadvDontneed = 4
		_, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontneed, 0, 0)
		if errno != 0 {
			return errno
		}
		return nil
	})
}

func pct(d []time.Duration, p float64) time.Duration {
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func lookup() error {
	if *evict {
		if err := evictDir(); err != nil {
			return err
		}
	}
	before := status()
	t0 := time.Now()
	e, err := open()
	if err != nil {
		return err
	}
	opened := time.Since(t0)
	cp, err := workload.Checkpoint(e)
	if err != nil {
		return err
	}
	ready := time.Since(t0)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 18))
	lat := make([]time.Duration, *lookups)
	var events int
	for n := range lat {
		o := r.Uint64N(*orders)
		t := time.Now()
		s, err := e.Get(workload.TSummary, workload.OrderID(o))
		if err != nil {
			return err
		}
		var evs [][]byte
		err = e.Scan(workload.TEvent, workload.EventPrefix(o), func(k, v []byte) error {
			evs = append(evs, append([]byte(nil), v...))
			return nil
		})
		if err != nil {
			return err
		}
		lat[n] = time.Since(t)
		if s == nil || len(evs) != workload.EventsPerOrder {
			return fmt.Errorf("order %d: summary %x, %d events", o, s, len(evs))
		}
		events += len(evs)
	}
	slices.Sort(lat)
	fmt.Printf("lookup engine=%s evict=%v open=%v ready=%v checkpoint=%d lookups=%d p50=%v p99=%v max=%v before_open:[%s] after:[%s]\n",
		*engine, *evict, opened.Round(time.Microsecond), ready.Round(time.Microsecond), cp, len(lat),
		pct(lat, 0.50).Round(time.Microsecond), pct(lat, 0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), before, status())
	return e.Close()
}

// crash feeds in a child process, kills it with SIGKILL by its PID once
// its checkpoint passed -kill-at, and then checks the store in a fresh child.
func crash() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"-engine", *engine, "-dir", *dir, "-orders", fmt.Sprint(*orders), "-cache-mib", fmt.Sprint(*cacheMiB), "-memtable-mib", fmt.Sprint(*memMiB)}
	if *sync {
		args = append(args, "-sync")
	}
	child := exec.Command(self, append([]string{"feed", "-progress"}, args...)...)
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	var last uint64
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "at" {
			last, _ = strconv.ParseUint(f[1], 10, 64)
			if last >= *killAt {
				break
			}
		}
	}
	killed := time.Now()
	if *jitter > 0 {
		time.Sleep(rand.N(*jitter))
	}
	if err := syscall.Kill(child.Process.Pid, syscall.SIGKILL); err != nil {
		return err
	}
	werr := child.Wait()
	fmt.Printf("crash engine=%s killed pid=%d after it printed checkpoint %d, %v later (%v)\n", *engine, child.Process.Pid, last, time.Since(killed).Round(time.Millisecond), werr)
	c := exec.Command(self, append([]string{"check"}, args...)...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	return c.Run()
}

func corrupt() error {
	p := filepath.Join(*dir, *file)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	fi, _ := f.Stat()
	off := *offset
	if off < 0 {
		off = fi.Size() / 2
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	old := b[0]
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		return err
	}
	f.Close()
	fmt.Printf("corrupt engine=%s file=%s size=%d offset=%d byte %#x -> %#x\n", *engine, *file, fi.Size(), off, old, b[0])
	step := func(name string, fn func() error) {
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("PANIC: %v\n%s", r, firstLines(debug.Stack(), 12))
				}
			}()
			err = fn()
		}()
		fmt.Printf("  %s: %v", name, errOrOK(err))
		if err != nil {
			fmt.Printf(" [pebble.IsCorruptionError: %v]", pebble.IsCorruptionError(err))
		}
		fmt.Println()
	}
	var e workload.Engine
	step("open", func() (err error) { e, err = open(); return err })
	if e == nil {
		return nil
	}
	step("checkpoint", func() error { _, err := workload.Checkpoint(e); return err })
	step("10,000 lookups", func() error {
		r := rand.New(rand.NewPCG(1, 18))
		for range 10_000 {
			o := r.Uint64N(*orders)
			if _, err := e.Get(workload.TSummary, workload.OrderID(o)); err != nil {
				return err
			}
			if err := e.Scan(workload.TEvent, workload.EventPrefix(o), func(k, v []byte) error { return nil }); err != nil {
				return err
			}
		}
		return nil
	})
	step("full scan of every table (engine errors only)", func() error {
		for _, t := range []byte{workload.TSummary, workload.TEvent, workload.TDeadline} {
			if err := e.Scan(t, nil, func(k, v []byte) error { return nil }); err != nil {
				return err
			}
		}
		return nil
	})
	switch db := e.(type) {
	case *pebbleeng.DB:
		step("pebble CheckLevels", func() error { return db.Pebble().CheckLevels(&pebble.CheckLevelsStats{}) })
	case *bolteng.DB:
		step("bbolt tx.Check", func() error {
			return db.Bolt().View(func(tx *bolt.Tx) error {
				var errs []error
				for err := range tx.Check() {
					errs = append(errs, err)
				}
				return errors.Join(errs...)
			})
		})
	}
	step("check of every value against the workload", func() error { _, err := workload.Check(e); return err })
	step("close", e.Close)
	if *engine == "pebble" {
		fmt.Println("  DataCorruption events:", pebbleeng.Corruptions())
	}
	return nil
}

func firstLines(b []byte, n int) string {
	l := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(l[:min(n, len(l))], "\n")
}

func errOrOK(err error) string {
	if err == nil {
		return "no error"
	}
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
