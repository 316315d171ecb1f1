package litefstest_test

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litefs-sql/litefs/litefstest"
)

func ExampleNewMount() {
	// In a test:
	_ = func(t *testing.T) {
		m := litefstest.NewMount(t)
		db, err := sql.Open("sqlite3", m.DSN()) // or the litefs driver
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()

		m.SetReplica("node-0") // .primary now reads "node-0\n"
		// ... writes through the litefs driver are refused, naming node-0.
		m.SetNoPrimary() // LiteFS knows no primary
		// ... writes are refused, no primary named.
		m.SetPrimary() // a plain directory again: a single primary
	}
}

func ExampleStartCluster() {
	// In a test (skipped where LiteFS cannot run):
	_ = func(t *testing.T) {
		c := litefstest.StartCluster(t, 2)
		primary, replica := c.Primary(), c.Replicas()[0]

		db, err := sql.Open("sqlite3", primary.DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		c.WaitReplicated(t)

		b, _ := os.ReadFile(filepath.Join(replica.MountDir(), litefstest.PrimaryFile))
		fmt.Printf("%q", b) // "node-0\n"
	}
}

func ExampleFlyProxy() {
	// Two instances: node-0 takes writes, node-1 replays them to node-0.
	var servers []*httptest.Server // in a test, t.Cleanup(srv.Close) each
	defer func() {
		for _, srv := range servers {
			srv.Close()
		}
	}()
	instance := func(id string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id != "node-0" && r.Method == http.MethodPost {
				w.Header().Set("Fly-Replay", "instance=node-0")
				return
			}
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s stored %s", id, body)
		}))
		servers = append(servers, srv)
		return srv.URL
	}
	proxy, err := litefstest.NewFlyProxy(litefstest.FlyProxyConfig{
		Instances: map[string]string{"node-0": instance("node-0"), "node-1": instance("node-1")},
		Target:    "node-1", // every request reaches the replica first
	})
	if err != nil {
		panic(err)
	}
	front := httptest.NewServer(proxy) // in a test, proxy.Start(t)
	defer front.Close()

	resp, err := http.Post(front.URL, "text/plain", strings.NewReader("a post"))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	for _, r := range proxy.Replays() {
		fmt.Println(r.Method, "replayed from", r.From, "to", r.To)
	}
	// Output:
	// 200 node-0 stored a post
	// POST replayed from node-1 to node-0
}

func ExampleParseReplayHeader() {
	h, err := litefstest.ParseReplayHeader(`instance=node-0;state="hops=1";timeout=2s;fallback=force_self`)
	fmt.Printf("%q %q %v %s %v\n", h.Instance, h.State, h.Timeout, h.Fallback, err)

	_, err = litefstest.ParseReplayHeader("state=x")
	fmt.Println(err)
	// Output:
	// "node-0" "hops=1" 2s force_self <nil>
	// litefstest: invalid fly-replay header "state=x": no target (want instance, prefer_instance, region, app or elsewhere=true)
}

func ExampleParseReplaySrc() {
	src, err := litefstest.ParseReplaySrc("instance=node-1;region=local;t=1700000000000001;state=hops=1")
	fmt.Println(src.Instance, src.Region, src.Time.UTC().Format("2006-01-02T15:04:05.000000"), src.State, err)
	// Output:
	// node-1 local 2023-11-14T22:13:20.000001 hops=1 <nil>
}

func ExampleParsePos() {
	pos, err := litefstest.ParsePos([]byte("0000000000000003/a2fc350ac7362d33\n"))
	fmt.Println(pos.TXID, err)
	fmt.Println(pos)
	// Output:
	// 3 <nil>
	// 0000000000000003/a2fc350ac7362d33
}
