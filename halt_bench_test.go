//go:build linux

package litefs_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/httpbridge"
	"github.com/litefs-sql/litefs/litefstest"
)

// BenchmarkLiteFSForwardedWrite measures a single-row INSERT on a real
// two-node LiteFS cluster: on the primary; from the replica through the
// HALT lock, taken per write (WithHalt, and a handle with
// WithForwardWrites) and held across 100 writes; and, for comparison, as an
// HTTP request refused on the replica and replayed on the primary through
// litefstest.FlyProxy, next to the same request sent to the primary. The
// cases run in benchRounds interleaved rounds:
//
//	go test -run '^$' -bench LiteFSForwardedWrite -benchtime 2s .
func BenchmarkLiteFSForwardedWrite(b *testing.B) {
	cluster, pdb, rdb, fdb, instances := benchCluster(b)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	// warm: the first lock after the primary's case waits for the replica
	// to catch up (up to a heartbeat, 1 s); take it before timing.
	warm := func(b *testing.B) {
		must(b, litefs.WithHalt(b.Context(), rdb, func(context.Context) error { return nil }))
	}
	const q = "INSERT INTO items(v, node) VALUES ('bench', 'x')"
	exec := func(ctx context.Context, db *sql.DB) error {
		_, err := db.ExecContext(ctx, q)
		return err
	}
	cases := []struct {
		name string
		run  func(b *testing.B)
	}{
		{"primary", func(b *testing.B) {
			for b.Loop() {
				must(b, exec(b.Context(), pdb))
			}
		}},
		{"replica-WithHalt-per-write", func(b *testing.B) {
			warm(b)
			for b.Loop() {
				must(b, litefs.WithHalt(b.Context(), rdb, func(ctx context.Context) error { return exec(ctx, rdb) }))
			}
		}},
		{"replica-ForwardWrites-per-write", func(b *testing.B) {
			warm(b)
			for b.Loop() {
				must(b, exec(b.Context(), fdb))
			}
		}},
		{"replica-WithHalt-100-writes", func(b *testing.B) {
			warm(b)
			for done := 0; done < b.N; {
				must(b, litefs.WithHalt(b.Context(), rdb, func(ctx context.Context) error {
					for k := 0; k < 100 && done < b.N; k++ {
						if err := exec(ctx, rdb); err != nil {
							return err
						}
						done++
					}
					return nil
				}))
			}
		}},
		{"http-primary", httpWrites(instances, primary.Hostname())},
		{"http-replica-refused-and-replayed", httpWrites(instances, replica.Hostname())},
	}
	// Rounds interleave the cases, so that a change in the machine's load
	// touches them all alike; -count would run each case's repeats in a row.
	for range benchRounds {
		for _, tc := range cases {
			b.Run(tc.name, tc.run)
		}
	}
}

// httpWrites posts a write through a FlyProxy that sends it to target.
func httpWrites(instances map[string]string, target string) func(b *testing.B) {
	return func(b *testing.B) {
		proxy, err := litefstest.NewFlyProxy(litefstest.FlyProxyConfig{Instances: instances, Target: target})
		if err != nil {
			b.Fatal(err)
		}
		base := proxy.Start(b)
		body := url.Values{"v": {"bench"}}.Encode()
		for b.Loop() {
			resp, err := http.Post(base+"/items", "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Fatalf("POST: %s", resp.Status)
			}
		}
	}
}

// benchCluster starts two nodes running app behind httpbridge, with table
// items replicated; it returns the cluster, the primary's and the replica's
// handles, a replica handle with WithForwardWrites, and the app instances'
// URLs.
func benchCluster(b *testing.B) (cluster *litefstest.Cluster, pdb, rdb, fdb *sql.DB, instances map[string]string) {
	b.Helper()
	cluster = litefstest.StartCluster(b, 2)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	instances = map[string]string{}
	dbs := map[string]*sql.DB{}
	for _, n := range cluster.Nodes() {
		db, err := sql.Open("litefs", n.DSN())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		dbs[n.Hostname()] = db
		br, err := httpbridge.New(httpbridge.Config{InstanceID: n.Hostname(), DB: db})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(br.Handler(app(db, n.Hostname())))
		b.Cleanup(srv.Close)
		instances[n.Hostname()] = srv.URL
	}
	pdb, rdb = dbs[primary.Hostname()], dbs[replica.Hostname()]
	if _, err := pdb.Exec("CREATE TABLE items(v TEXT, node TEXT)"); err != nil {
		b.Fatal(err)
	}
	cluster.WaitReplicated(b)
	c, err := litefs.NewConnector(replica.DSN(), litefs.WithForwardWrites())
	if err != nil {
		b.Fatal(err)
	}
	fdb = sql.OpenDB(c)
	b.Cleanup(func() { fdb.Close() })

	return cluster, pdb, rdb, fdb, instances
}

const benchRounds = 3

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
