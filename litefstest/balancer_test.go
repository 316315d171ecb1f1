package litefstest_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

func TestBalancerRoundRobin(t *testing.T) {
	t.Parallel()
	var urls []string
	for i := range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Every instance asks for a replay: the balancer must not follow it.
			w.Header().Set("Fly-Replay", "instance=node-0")
			w.Header().Set("X-Saw-For", r.Header.Get("X-Forwarded-For"))
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, strconv.Itoa(i))
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	b, err := litefstest.NewBalancer(urls...)
	require.NoError(t, err)
	base := b.Start(t)
	var got []string
	for range 5 {
		assert.Equal(t, len(got)%3, b.Next())
		req, err := http.NewRequest(http.MethodPost, base, strings.NewReader("x"))
		require.NoError(t, err)
		req.Header.Set("X-Forwarded-For", "203.0.113.9") // forged: replaced
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusConflict, res.StatusCode)
		assert.Equal(t, "instance=node-0", res.Header.Get("Fly-Replay"))
		assert.Equal(t, "127.0.0.1", res.Header.Get("X-Saw-For"))
		got = append(got, string(body))
	}
	assert.Equal(t, []string{"0", "1", "2", "0", "1"}, got)
	assert.Equal(t, []int{0, 1, 2, 0, 1}, b.Served())
}

func TestBalancerStreams(t *testing.T) {
	t.Parallel()
	second := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		<-second // only once the client has read the first event
		io.WriteString(w, "data: two\n\n")
	}))
	t.Cleanup(srv.Close)
	b, err := litefstest.NewBalancer(srv.URL)
	require.NoError(t, err)
	res, err := http.Get(b.Start(t))
	require.NoError(t, err)
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: one\n", line)
	close(second)
	rest, err := io.ReadAll(rd)
	require.NoError(t, err)
	assert.Equal(t, "\ndata: two\n\n", string(rest))
}

func TestBalancerUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	b, err := litefstest.NewBalancer(srv.URL)
	require.NoError(t, err)
	res, err := http.Get(b.Start(t))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusBadGateway, res.StatusCode)
}

func TestNewBalancerValidates(t *testing.T) {
	t.Parallel()
	for _, urls := range [][]string{nil, {"127.0.0.1:8080"}, {"http://a", "ftp://b"}, {"http://"}} {
		_, err := litefstest.NewBalancer(urls...)
		assert.Error(t, err, "%q", urls)
	}
}
