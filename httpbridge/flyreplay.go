package httpbridge

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/litefs-sql/litefs/internal/flyreplay"
)

// Headers of Fly.io's replay protocol.
const (
	// HeaderReplay is the response header asking Fly's proxy to replay the
	// request elsewhere.
	HeaderReplay = flyreplay.Replay
	// HeaderReplaySrc is added by Fly's proxy to a replayed request: the
	// instance that asked for the replay and the state it passed along.
	HeaderReplaySrc = flyreplay.ReplaySrc
	// HeaderReplayFailed marks a request that came back to its sender
	// because the replay failed (fly-replay's fallback= field).
	HeaderReplayFailed = flyreplay.ReplayFailed
)

// hopsPrefix starts the state= value in which the bridge counts replays:
// "litefs-hops:<n>", or "litefs-hops:<n>.<nonce>" when a Forwarder sent it
// (see forwardNonce).
const hopsPrefix = "litefs-hops:"

// maxHopCount caps parsed hop counts, so huge numbers cannot overflow.
const maxHopCount = 1 << 20

// replaySource is what one Fly-Replay-Src value says.
type replaySource struct {
	instance string
	hops     int    // 0 when the state is not the bridge's
	nonce    string // after the hop count, "" if none
}

// parseReplaySource parses a Fly-Replay-Src value such as
// "instance=abc;region=ord;t=1700000000000000;state=litefs-hops:1". Fields
// it does not know, and malformed ones, are skipped.
func parseReplaySource(v string) replaySource {
	var src replaySource
	for v != "" {
		var field string
		field, v, _ = strings.Cut(v, ";")
		key, val, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		val = unquote(strings.TrimSpace(val))
		switch {
		case strings.EqualFold(key, "instance"):
			src.instance = val
		case strings.EqualFold(key, "state"):
			src.hops, src.nonce = parseHops(val)
		}
	}
	return src
}

// unquote strips one pair of surrounding double quotes.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// parseHops returns the hop count and the nonce in a state value
// "litefs-hops:<n>" or "litefs-hops:<n>.<nonce>", or 0 and "".
func parseHops(state string) (int, string) {
	rest, ok := strings.CutPrefix(state, hopsPrefix)
	digits, nonce, _ := strings.Cut(rest, ".")
	if !ok || digits == "" {
		return 0, ""
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, ""
		}
		n = min(n*10+int(c-'0'), maxHopCount)
	}
	return n, nonce
}

// replayOrigin sums up a request's Fly-Replay-Src headers: how many times it
// was replayed (at least 1 if it carries the header at all, whoever sent it)
// and whether it came from instance id.
func replayOrigin(h http.Header, id string) (hops int, fromID bool) {
	for _, v := range h[HeaderReplaySrc] {
		src := parseReplaySource(v)
		hops = max(hops, src.hops, 1)
		fromID = fromID || id != "" && src.instance == id
	}
	return hops, fromID
}

// replayValue formats a fly-replay header value sending a request that has
// made hops replays to instance primary.
func replayValue(primary string, hops int, timeout time.Duration, fallback string) string {
	var b strings.Builder
	b.Grow(64 + len(primary))
	b.WriteString("instance=")
	b.WriteString(primary)
	b.WriteString(";state=" + hopsPrefix)
	b.WriteString(strconv.Itoa(hops + 1))
	if timeout > 0 {
		b.WriteString(";timeout=")
		b.WriteString(strconv.FormatInt(max(timeout.Milliseconds(), 1), 10))
		b.WriteString("ms")
	}
	if fallback != "" {
		b.WriteString(";fallback=")
		b.WriteString(fallback)
	}
	return b.String()
}

// flyReplay is the default Replayer: an empty response whose Fly-Replay
// header asks Fly's proxy to replay the request on the primary.
type flyReplay struct {
	status   int
	timeout  time.Duration
	fallback string
}

func (f flyReplay) Replay(w http.ResponseWriter, r *http.Request, d Decision) {
	h := w.Header()
	h[HeaderReplay] = []string{replayValue(d.Primary, d.Hops, f.timeout, f.fallback)}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(f.status)
}
