package litefstest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/litefs-sql/litefs/internal/flyreplay"
)

// Header names of Fly.io's replay protocol, in canonical form.
const (
	// HeaderReplay is the response header that asks the proxy to replay the
	// request elsewhere.
	HeaderReplay = flyreplay.Replay
	// HeaderReplaySrc is the request header a replayed request carries: who
	// replayed it, from where, when, and the sender's state.
	HeaderReplaySrc = flyreplay.ReplaySrc
	// HeaderReplayFailed is the request header of a replay that failed and
	// came back to its sender because the replay asked for a fallback.
	HeaderReplayFailed = flyreplay.ReplayFailed
	// HeaderPreferredInstanceUnavailable is the request header naming the
	// prefer_instance target that could not take a replay.
	HeaderPreferredInstanceUnavailable = flyreplay.PreferredInstanceUnavailable
	// HeaderForceInstance is the request header a client sets to reach one
	// instance.
	HeaderForceInstance = flyreplay.ForceInstance
	// HeaderRequestID is the request header carrying the proxy's ID of a
	// request; replays of one request share it.
	HeaderRequestID = flyreplay.RequestID
)

// Values of the fallback field of a fly-replay header.
const (
	// FallbackForceSelf sends a failed replay back to the instance that asked
	// for it, or fails.
	FallbackForceSelf = flyreplay.FallbackForceSelf
	// FallbackPreferSelf sends a failed replay back to the instance that
	// asked for it, or to any other instance.
	FallbackPreferSelf = flyreplay.FallbackPreferSelf
)

// ReplayHeader is a parsed fly-replay response header. A header names at
// least one target: Instance, PreferInstance, Region, App or Elsewhere.
type ReplayHeader struct {
	Instance       string        // instance=: the only instance to replay to
	PreferInstance string        // prefer_instance=: the instance to try first
	Region         string        // region=: a region or comma-separated list, as given
	App            string        // app=: another app of the organization
	Elsewhere      bool          // elsewhere=true: not the instance that answered
	State          string        // state=: copied into Fly-Replay-Src
	Timeout        time.Duration // timeout=: how long to try reaching the target; 0 if unset
	Fallback       string        // fallback=: "", FallbackForceSelf or FallbackPreferSelf
}

// ParseReplayHeader parses a fly-replay header value: ';'-separated
// key=value fields, values optionally double-quoted (a quoted value may hold
// ';', ',' and backslash escapes). Keys are case-insensitive; unknown keys
// are ignored; a key given twice, a malformed field or value, and a header
// without a target are errors.
func ParseReplayHeader(s string) (ReplayHeader, error) {
	var h ReplayHeader
	fields, err := splitFields(s)
	if err != nil {
		return h, fmt.Errorf("litefstest: invalid fly-replay header %s: %w", quoteTrunc(s), err)
	}
	for _, f := range fields {
		var err error
		switch f.key {
		case "instance":
			h.Instance = f.value
		case "prefer_instance":
			h.PreferInstance = f.value
		case "region":
			h.Region = f.value
		case "app":
			h.App = f.value
		case "state":
			h.State = f.value
		case "elsewhere":
			h.Elsewhere, err = strconv.ParseBool(f.value)
			if err != nil {
				err = fmt.Errorf("elsewhere=%q: want true or false", f.value)
			}
		case "timeout":
			h.Timeout, err = time.ParseDuration(f.value)
			if err != nil || h.Timeout <= 0 {
				err = fmt.Errorf("timeout=%q: want a positive duration such as 800ms or 10s", f.value)
			}
		case "fallback":
			h.Fallback = f.value
			if f.value != FallbackForceSelf && f.value != FallbackPreferSelf {
				err = fmt.Errorf("fallback=%q: want %s or %s", f.value, FallbackForceSelf, FallbackPreferSelf)
			}
		}
		if err != nil {
			return ReplayHeader{}, fmt.Errorf("litefstest: invalid fly-replay header %s: %w", quoteTrunc(s), err)
		}
	}
	if h.Instance == "" && h.PreferInstance == "" && h.Region == "" && h.App == "" && !h.Elsewhere {
		return ReplayHeader{}, fmt.Errorf("litefstest: invalid fly-replay header %s: no target (want instance, prefer_instance, region, app or elsewhere=true)", quoteTrunc(s))
	}
	return h, nil
}

// String formats h as a fly-replay header value, quoting values that need it.
func (h ReplayHeader) String() string {
	var b strings.Builder
	add := func(key, value string) {
		if value == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(quoteValue(value))
	}
	add("instance", h.Instance)
	add("prefer_instance", h.PreferInstance)
	add("region", h.Region)
	add("app", h.App)
	if h.Elsewhere {
		add("elsewhere", "true")
	}
	add("state", h.State)
	if h.Timeout > 0 {
		add("timeout", h.Timeout.String())
	}
	add("fallback", h.Fallback)
	return b.String()
}

// ReplaySrc is a parsed Fly-Replay-Src request header: where a replayed
// request comes from.
type ReplaySrc struct {
	Instance string    // instance=: the instance that asked for the replay
	Region   string    // region=: its region
	Time     time.Time // t=: when it asked, to the microsecond; zero if absent
	State    string    // state=: the state field of its fly-replay header
}

// ParseReplaySrc parses a Fly-Replay-Src header value, with the syntax of
// [ParseReplayHeader]. The instance field is required; t must be a
// non-negative count of microseconds since the Unix epoch.
func ParseReplaySrc(s string) (ReplaySrc, error) {
	var src ReplaySrc
	fields, err := splitFields(s)
	if err != nil {
		return src, fmt.Errorf("litefstest: invalid Fly-Replay-Src header %s: %w", quoteTrunc(s), err)
	}
	for _, f := range fields {
		switch f.key {
		case "instance":
			src.Instance = f.value
		case "region":
			src.Region = f.value
		case "state":
			src.State = f.value
		case "t":
			us, err := strconv.ParseInt(f.value, 10, 64)
			if err != nil || us < 0 {
				return ReplaySrc{}, fmt.Errorf("litefstest: invalid Fly-Replay-Src header %s: t=%q: want microseconds since the Unix epoch", quoteTrunc(s), f.value)
			}
			src.Time = time.UnixMicro(us)
		}
	}
	if src.Instance == "" {
		return ReplaySrc{}, fmt.Errorf("litefstest: invalid Fly-Replay-Src header %s: no instance", quoteTrunc(s))
	}
	return src, nil
}

// String formats src as a Fly-Replay-Src header value.
func (src ReplaySrc) String() string {
	var b strings.Builder
	b.WriteString("instance=" + quoteValue(src.Instance))
	if src.Region != "" {
		b.WriteString(";region=" + quoteValue(src.Region))
	}
	if !src.Time.IsZero() {
		b.WriteString(";t=" + strconv.FormatInt(src.Time.UnixMicro(), 10))
	}
	if src.State != "" {
		b.WriteString(";state=" + quoteValue(src.State))
	}
	return b.String()
}

// maxHeaderLen bounds the header values the parsers accept; real ones are a
// few dozen bytes, and net/http caps all headers at 1 MB anyway.
const maxHeaderLen = 64 << 10

type field struct{ key, value string }

// splitFields splits s into key=value fields separated by ';'. Empty fields
// (";;", a trailing ';') are skipped; keys are lower-cased.
func splitFields(s string) ([]field, error) {
	if len(s) > maxHeaderLen {
		return nil, fmt.Errorf("longer than %d bytes", maxHeaderLen)
	}
	var fields []field
	i := 0
	for {
		i = skipSpace(s, i)
		if i == len(s) {
			break
		}
		if s[i] == ';' {
			i++
			continue
		}
		start := i
		for i < len(s) && isKeyByte(s[i]) {
			i++
		}
		key := strings.ToLower(s[start:i])
		if key == "" {
			return nil, fmt.Errorf("at byte %d: got %q, want a field name", i, s[i])
		}
		i = skipSpace(s, i)
		if i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("field %q: want key=value", key)
		}
		value, next, err := readValue(s, skipSpace(s, i+1))
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", key, err)
		}
		i = next
		for _, f := range fields {
			if f.key == key {
				return nil, fmt.Errorf("field %q given twice", key)
			}
		}
		fields = append(fields, field{key: key, value: value})
	}
	if len(fields) == 0 {
		return nil, errors.New("no fields")
	}
	return fields, nil
}

// readValue reads the value that starts at s[i], quoted or not, up to the
// next ';' or the end, and returns it and the index after it.
func readValue(s string, i int) (string, int, error) {
	if i < len(s) && s[i] == '"' {
		value, i, err := readQuoted(s, i)
		if err != nil {
			return "", 0, err
		}
		i = skipSpace(s, i)
		if i < len(s) && s[i] != ';' {
			return "", 0, errors.New("text after the closing quote")
		}
		return value, i, nil
	}
	start := i
	for i < len(s) && s[i] != ';' {
		if isCtl(s[i]) {
			return "", 0, fmt.Errorf("control byte %#02x", s[i])
		}
		i++
	}
	return strings.TrimRight(s[start:i], " \t"), i, nil
}

// readQuoted reads the quoted string that starts at s[i] and returns its
// unescaped value and the index after the closing quote.
func readQuoted(s string, i int) (string, int, error) {
	var b strings.Builder
	for i++; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, nil
		case c == '\\':
			i++
			if i == len(s) {
				return "", 0, errors.New("unterminated quoted value")
			}
			c = s[i]
		}
		if isCtl(c) {
			return "", 0, fmt.Errorf("control byte %#02x in quoted value", c)
		}
		b.WriteByte(c)
	}
	return "", 0, errors.New("unterminated quoted value")
}

// quoteValue returns v as is when it is a plain token, else as a quoted
// string that readQuoted reads back to v.
func quoteValue(v string) string {
	plain := v != ""
	for i := 0; i < len(v) && plain; i++ {
		plain = isPlainByte(v[i])
	}
	if plain {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func isKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// isPlainByte reports whether c may appear in an unquoted value that
// splitFields reads back unchanged.
func isPlainByte(c byte) bool {
	return isKeyByte(c) || strings.IndexByte(".:/+@!*~%=", c) >= 0 || c >= 0x80
}

func isCtl(c byte) bool { return c < 0x20 && c != '\t' || c == 0x7f }

func quoteTrunc(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}
