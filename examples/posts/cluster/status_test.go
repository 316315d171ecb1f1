//go:build linux

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodeStatus is the part of httpbridge's status JSON this test reads.
type nodeStatus struct {
	OK      bool   `json:"ok"`
	Problem string `json:"problem"`
	Role    string `json:"role"`
	Primary string `json:"primary"`
	Source  string `json:"source"`
}

func getStatus(t *testing.T, n *node) (int, nodeStatus) {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(n.appURL() + "/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	var st nodeStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return resp.StatusCode, st
}

// TestStatusOnBothNodes asks each node's app, directly, for its state: the
// primary and a replica of it, both fit to serve; then, with the primary's
// LiteFS stopped, the replica knows no primary and answers 503.
func TestStatusOnBothNodes(t *testing.T) {
	c := startCluster(t)
	primary, replica := c.Node("node-a"), c.Node("node-b")

	code, st := getStatus(t, primary)
	assert.Equal(t, http.StatusOK, code)
	assert.True(t, st.OK)
	assert.Equal(t, "primary", st.Role)

	code, st = getStatus(t, replica)
	assert.Equal(t, http.StatusOK, code)
	assert.True(t, st.OK)
	assert.Equal(t, "replica", st.Role)
	assert.Equal(t, "node-a", st.Primary)
	t.Logf("sources: replica %q", st.Source)

	require.NoError(t, primary.stop())
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, st = getStatus(t, replica)
		if code == http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, with a deadline
	}
	assert.Equal(t, http.StatusServiceUnavailable, code, "the replica cut off from its primary: %+v", st)
	assert.False(t, st.OK)
	assert.NotEmpty(t, st.Problem)
	assert.Equal(t, "no-primary", st.Role)
}

// TestCheckinsReachEveryNode: each app checks in when it starts, the
// replica through LiteFS's write forwarding (litefs.WithHalt), and every
// node lists both check-ins.
func TestCheckinsReachEveryNode(t *testing.T) {
	c := startCluster(t)
	client := http.Client{Timeout: 5 * time.Second}
	for _, name := range []string{"node-a", "node-b"} {
		n := c.Node(name)
		deadline := time.Now().Add(30 * time.Second)
		var body string
		for {
			resp, err := client.Get(n.appURL() + "/nodes")
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			body = string(b)
			if strings.Contains(body, "<code>node-a</code>") && strings.Contains(body, "<code>node-b</code>") ||
				time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond) // polling a condition, with a deadline
		}
		assert.Contains(t, body, "<code>node-a</code>", "%s lists the primary's check-in", name)
		assert.Contains(t, body, "<code>node-b</code>", "%s lists the replica's check-in, forwarded", name)
	}
}
