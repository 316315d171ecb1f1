// Package flyreplay names the HTTP headers of Fly.io's replay protocol, once,
// for the packages that speak it: httpbridge answers with them and
// litefstest's stand-in for Fly.io's proxy sends them. Both re-export the
// names their users need.
package flyreplay

// Header names, in canonical form (as [net/http.CanonicalHeaderKey] gives
// them).
const (
	// Replay is the response header that asks Fly's proxy to replay the
	// request elsewhere.
	Replay = "Fly-Replay"
	// ReplaySrc is the request header a replayed request carries: the
	// instance that asked for the replay, its region, when, and the state it
	// passed along.
	ReplaySrc = "Fly-Replay-Src"
	// ReplayFailed is the request header of a replay that failed and came
	// back to its sender because the replay asked for a fallback.
	ReplayFailed = "Fly-Replay-Failed"
	// PreferredInstanceUnavailable is the request header naming the
	// prefer_instance target that could not take a replay.
	PreferredInstanceUnavailable = "Fly-Preferred-Instance-Unavailable"
	// ForceInstance is the request header a client sets to reach one
	// instance.
	ForceInstance = "Fly-Force-Instance-Id"
	// RequestID is the request header carrying the proxy's ID of a request;
	// replays of one request share it.
	RequestID = "Fly-Request-Id"
	// Region is the request header naming the region where the proxy
	// accepted the request.
	Region = "Fly-Region"
	// ClientIP is the request header carrying the client's address.
	ClientIP = "Fly-Client-Ip"
)

// Values of the fallback= field of a fly-replay header.
const (
	// FallbackForceSelf sends a failed replay back to the instance that asked
	// for it, or fails.
	FallbackForceSelf = "force_self"
	// FallbackPreferSelf sends a failed replay back to the instance that
	// asked for it, or to any other instance.
	FallbackPreferSelf = "prefer_self"
)
