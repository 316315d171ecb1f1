package litefs

import (
	"database/sql"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litefs-sql/litefs/internal/dirwatch"
	"github.com/litefs-sql/litefs/litefstest"
)

// The benchmarks compare this driver with raw go-sqlite3 on the same
// database file, in one run: each b.Loop iteration is one round of k calls
// of each, interleaved, and the figures reported are the median call of
// each (raw-ns/op, litefs-ns/op) and the median of the per-round ratios
// (x-raw, with its min and max), which the load of the machine affects
// least. Run them with a fixed count of rounds, e.g. -benchtime=20x.

const benchRows = 1000

// benchSchema makes the 1000-row WAL table the benchmarks update and read.
const benchSchema = `CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT);
	WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000)
	INSERT OR IGNORE INTO t(id, v) SELECT i, 'row ' || i FROM n`

const (
	benchUpdate = "UPDATE t SET v = ? WHERE id = ?"
	benchRead   = "SELECT v FROM t WHERE id = ?"
)

// interleave runs raw and litefs in rounds of k pairs of calls, one of each
// in alternating order, timing every call; a round's ratio is the median
// litefs call over the median raw call, which a preempted call or a
// checkpoint that one call pays for does not move. A call gets its index,
// to pick a row.
func interleave(b *testing.B, k int, raw, litefs func(i int)) {
	b.Helper()
	var rawAll, liteAll, ratios []float64
	rawNs, liteNs := make([]float64, k), make([]float64, k)
	i := 0
	for b.Loop() {
		for j := range k {
			first, second := raw, litefs
			if j%2 == 1 {
				first, second = litefs, raw
			}
			t0 := time.Now()
			first(i)
			t1 := time.Now()
			second(i)
			d1, d2 := float64(t1.Sub(t0)), float64(time.Since(t1))
			if j%2 == 1 {
				d1, d2 = d2, d1
			}
			rawNs[j], liteNs[j] = d1, d2
			i++
		}
		ratios = append(ratios, median(liteNs)/median(rawNs))
		rawAll, liteAll = append(rawAll, rawNs...), append(liteAll, liteNs...)
	}
	b.ReportMetric(median(liteAll), "ns/op")
	b.ReportMetric(median(rawAll), "raw-ns/op")
	b.ReportMetric(median(liteAll), "litefs-ns/op")
	b.ReportMetric(median(ratios), "x-raw")
	b.ReportMetric(slices.Min(ratios), "x-raw-min")
	b.ReportMetric(slices.Max(ratios), "x-raw-max")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// allocs measures the allocations of one call of raw and of litefs, and
// returns a function that reports them (b.Loop drops metrics reported
// before it starts).
func allocs(raw, litefs func(i int)) (report func(b *testing.B)) {
	i := 0
	rawA := testing.AllocsPerRun(100, func() { raw(i); i++ })
	liteA := testing.AllocsPerRun(100, func() { litefs(i); i++ })
	return func(b *testing.B) {
		b.ReportMetric(rawA, "raw-allocs/op")
		b.ReportMetric(liteA, "litefs-allocs/op")
	}
}

// benchPair opens dsn's database with raw go-sqlite3 and with this driver
// (opts), and makes the table.
func benchPair(b *testing.B, dsn string, opts ...Option) (raw, lite *sql.DB) {
	b.Helper()
	raw, err := sql.Open("sqlite3", dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(benchSchema); err != nil {
		b.Fatal(err)
	}
	c, err := NewConnector(dsn, append([]Option{WithLogger(discard)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	lite = sql.OpenDB(c)
	b.Cleanup(func() { lite.Close() })
	if err := lite.Ping(); err != nil && !errors.Is(err, ErrNotPrimary) {
		b.Fatal(err)
	}
	return raw, lite
}

// updaters numbers the update functions, so that no two write the same
// value: an UPDATE that sets a row to what it holds writes no page, and
// LiteFS then makes no transaction, so a side that followed the other on
// the same row with the same value would time a write that does nothing.
var updaters atomic.Int64

// newValue returns, for call i of updater u, a value no other call writes.
func newValue(u int64, i int) int64 { return int64(i)<<16 | u }

func update(b *testing.B, db *sql.DB) func(i int) {
	u := updaters.Add(1)
	return func(i int) {
		if _, err := db.Exec(benchUpdate, newValue(u, i), i%benchRows+1); err != nil {
			b.Fatal(err)
		}
	}
}

func refuse(b *testing.B, db *sql.DB) func(i int) {
	return func(i int) {
		if _, err := db.Exec(benchUpdate, "refused", i%benchRows+1); !errors.Is(err, ErrNotPrimary) {
			b.Fatalf("got %v, want a refusal", err)
		}
	}
}

func read(b *testing.B, db *sql.DB) func(i int) {
	var v string
	return func(i int) {
		if err := db.QueryRow(benchRead, i%benchRows+1).Scan(&v); err != nil {
			b.Fatal(err)
		}
	}
}

// assertNotRefusedInto fails b if a refused write reached the table.
func assertNotRefusedInto(b *testing.B, db *sql.DB) {
	b.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t WHERE v = 'refused'").Scan(&n); err != nil || n != 0 {
		b.Fatalf("%d refused writes reached the table (%v)", n, err)
	}
}

// steadyDir puts m's directory in the state of one in service. With an
// inotify watch (Linux), the driver remembers the role from the first
// write, so there is nothing to do; without one, it checks the directory's
// mtime, which it trusts only once older than dirMtimeSlack.
func steadyDir(b *testing.B, m *litefstest.Mount) {
	b.Helper()
	if !dirwatch.Watching(m.Dir()) {
		b.Log("no inotify watch of the directory: measuring the mtime fallback")
		backdateDir(b, m)
	}
}

// BenchmarkTempFile measures the driver on a local file, where looking at
// the directory costs a microsecond: a single-row UPDATE by primary key, a
// refused one on a replica against a raw one, and a point read.
func BenchmarkTempFile(b *testing.B) {
	b.Run("write", func(b *testing.B) {
		m := litefstest.NewMount(b)
		raw, lite := benchPair(b, m.DSN())
		steadyDir(b, m)
		report := allocs(update(b, raw), update(b, lite))
		interleave(b, 100, update(b, raw), update(b, lite))
		report(b)
	})
	b.Run("refusal", func(b *testing.B) {
		m := litefstest.NewMount(b)
		raw, lite := benchPair(b, m.DSN())
		m.SetReplica("node-a")
		steadyDir(b, m)
		report := allocs(update(b, raw), refuse(b, lite))
		interleave(b, 100, update(b, raw), refuse(b, lite))
		report(b)
		b.StopTimer()
		assertNotRefusedInto(b, raw)
	})
	b.Run("read", func(b *testing.B) {
		m := litefstest.NewMount(b)
		raw, lite := benchPair(b, m.DSN())
		report := allocs(read(b, raw), read(b, lite))
		interleave(b, 200, read(b, raw), read(b, lite))
		report(b)
	})
}

// BenchmarkLiteFSCluster measures the driver on a real two-node LiteFS
// cluster (skipped without FUSE), where each look at the mount is a FUSE
// round trip: a write on the primary's mount, a refusal on the replica
// against a raw write on the primary, a point read, and a write followed by
// Tracker.TXID (what the bridge does for its cookie). "mount-files" turns
// the event stream off, to show what reading the mount for each write costs.
func BenchmarkLiteFSCluster(b *testing.B) {
	// Warm up: the first hundreds of writes on a fresh LiteFS database are
	// several times slower than the rest.
	cluster := benchCluster(b, 300)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	for _, mode := range []struct {
		name string
		api  func(n *litefstest.Node) string
	}{
		{name: "events", api: func(n *litefstest.Node) string { return n.URL() }},
		{name: "mount-files", api: func(*litefstest.Node) string { return "" }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			raw, lite := benchPair(b, p.DSN(), WithLiteFSAPI(mode.api(p)))
			_, rlite := benchPair(b, r.DSN(), WithLiteFSAPI(mode.api(r)))
			if mode.name == "events" {
				waitSource(b, lite, rlite)
			}
			b.Run("write", func(b *testing.B) { interleave(b, 10, update(b, raw), update(b, lite)) })
			b.Run("refusal", func(b *testing.B) {
				interleave(b, 10, update(b, raw), refuse(b, rlite))
				assertNotRefusedInto(b, raw)
			})
			b.Run("read", func(b *testing.B) { interleave(b, 50, read(b, raw), read(b, lite)) })
			b.Run("write+txid", func(b *testing.B) { interleave(b, 10, update(b, raw), updateTXID(b, lite, false)) })
			b.Run("write+prefetched-txid", func(b *testing.B) { interleave(b, 10, update(b, raw), updateTXID(b, lite, true)) })
		})
	}
}

// waitSource waits until every db trusts its event stream.
func waitSource(b *testing.B, dbs ...*sql.DB) {
	b.Helper()
	for _, db := range dbs {
		ctr, err := connectorOf(db)
		if err != nil {
			b.Fatal(err)
		}
		litefstest.WaitFor(b, func() error {
			if ctr.watcher().trusted() == nil {
				return errors.New("the event stream is not trusted yet")
			}
			return nil
		})
	}
}

// updateTXID is update and Tracker.TXID after it, prefetched in the commit
// hook (as the bridge asks) or read after the commit.
func updateTXID(b *testing.B, db *sql.DB, prefetch bool) func(i int) {
	u := updaters.Add(1)
	return func(i int) {
		tr := &Tracker{}
		if prefetch {
			tr.PrefetchTXID()
		}
		if _, err := db.ExecContext(WithTracker(b.Context(), tr), benchUpdate, newValue(u, i), i%benchRows+1); err != nil {
			b.Fatal(err)
		}
		if _, ok, err := tr.TXID(); !ok || err != nil {
			b.Fatalf("Tracker.TXID: %v, %v", ok, err)
		}
	}
}

// benchCluster starts a two-node cluster with benchSchema and warm updates
// run on the primary, replicated.
func benchCluster(b *testing.B, warm int) *litefstest.Cluster {
	b.Helper()
	cluster := litefstest.StartCluster(b, 2)
	setup, err := sql.Open("sqlite3", cluster.Primary().DSN())
	if err != nil {
		b.Fatal(err)
	}
	defer setup.Close()
	if _, err := setup.Exec(benchSchema); err != nil {
		b.Fatal(err)
	}
	for i := range warm {
		if _, err := setup.Exec(benchUpdate, "warm", i%benchRows+1); err != nil {
			b.Fatal(err)
		}
	}
	cluster.WaitReplicated(b)
	return cluster
}

// BenchmarkLiteFSMountFiles measures each look at a real LiteFS mount that
// the driver could make (skipped without FUSE): ns/op is one look.
func BenchmarkLiteFSMountFiles(b *testing.B) {
	cluster := benchCluster(b, 0)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	var buf [posSize + 1]byte
	for _, n := range []*litefstest.Node{p, r} {
		role := map[bool]string{true: "primary", false: "replica"}[n.IsPrimary()]
		dir := n.MountDir()
		b.Run(role+"/read-.primary", func(b *testing.B) {
			for b.Loop() {
				readSmall(dir+"/"+primaryFile, buf[:])
			}
		})
		b.Run(role+"/stat-.lag", func(b *testing.B) {
			for b.Loop() {
				statMtime(dir + "/" + lagFile)
			}
		})
		b.Run(role+"/read-pos", func(b *testing.B) {
			for b.Loop() {
				readPos(n.DBPath() + "-pos")
			}
		})
		b.Run(role+"/pread-kept-pos", func(b *testing.B) {
			f := newPosFile(n.DBPath()+"-pos", true)
			defer f.close()
			for b.Loop() {
				if _, err := f.read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoleCheck measures one role check of a remembered plain
// directory, as a write makes it: under an inotify watch (no system call),
// and under the directory's mtime when inotify is unavailable (one stat).
func BenchmarkRoleCheck(b *testing.B) {
	for _, tc := range []struct {
		name    string
		inotify bool
	}{
		{name: "inotify", inotify: true},
		{name: "mtime", inotify: false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := litefstest.NewMount(b)
			backdateDir(b, m)
			p := rememberingProber(b, m.Dir(), tc.inotify)
			p.check()
			before := p.lookups.Load()
			for b.Loop() {
				if err := p.check(); err != nil {
					b.Fatal(err)
				}
			}
			if p.lookups.Load() != before {
				b.Fatal("the role was read again: not remembered")
			}
		})
	}
}
