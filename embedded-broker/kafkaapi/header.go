package kafkaapi

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrMalformed: a request frame does not parse. The connection is closed
// after logging it: the stream position is no longer trustworthy.
var ErrMalformed = errors.New("kafkaapi: malformed request")

// versionRange is what ApiVersions advertises for one API.
type versionRange struct{ min, max int16 }

// supported lists every API served, with the versions advertised. Produce
// advertises 0-8 but answers 0-2 (message sets v0/v1) with
// UNSUPPORTED_FOR_MESSAGE_FORMAT per partition: old librdkafka turns
// compression off when a broker's minimum is above 0.
var supported = map[int16]versionRange{
	kmsg.Produce.Int16():          {0, 8},
	kmsg.Fetch.Int16():            {4, 11},
	kmsg.ListOffsets.Int16():      {1, 5},
	kmsg.Metadata.Int16():         {0, 8},
	kmsg.OffsetCommit.Int16():     {2, 7},
	kmsg.OffsetFetch.Int16():      {1, 5},
	kmsg.FindCoordinator.Int16():  {0, 2},
	kmsg.JoinGroup.Int16():        {0, 5},
	kmsg.Heartbeat.Int16():        {0, 3},
	kmsg.LeaveGroup.Int16():       {0, 3},
	kmsg.SyncGroup.Int16():        {0, 3},
	kmsg.ApiVersions.Int16():      {0, 3},
	kmsg.CreateTopics.Int16():     {2, 4},
	kmsg.InitProducerID.Int16():   {0, 1},
	kmsg.DescribeConfigs.Int16():  {1, 3},
	kmsg.DescribeGroups.Int16():   {0, 4},
	kmsg.SASLHandshake.Int16():    {0, 1},
	kmsg.SASLAuthenticate.Int16(): {0, 1},
}

// request is one decoded request frame.
type request struct {
	key, version int16
	correlation  int32
	clientID     string
	// body is the decoded request; nil when the key or version is not
	// served (the handler answers that without decoding).
	body kmsg.Request
}

// parseRequest decodes a frame (without its 4-byte size prefix): the
// request header (v1, or v2 with tagged fields for flexible versions) and,
// when the API and version are served, the body through kmsg. Errors wrap
// ErrMalformed, except that an unserved key or version is not an error:
// body is nil.
func parseRequest(frame []byte) (request, error) {
	var r request
	if len(frame) < 8 {
		return r, fmt.Errorf("%w: frame of %d bytes", ErrMalformed, len(frame))
	}
	be := binary.BigEndian
	r.key = int16(be.Uint16(frame))
	r.version = int16(be.Uint16(frame[2:]))
	r.correlation = int32(be.Uint32(frame[4:]))
	rest := frame[8:]
	if len(rest) < 2 {
		return r, fmt.Errorf("%w: no client id", ErrMalformed)
	}
	n := int16(be.Uint16(rest))
	rest = rest[2:]
	if n >= 0 {
		if int(n) > len(rest) {
			return r, fmt.Errorf("%w: client id of %d bytes, %d left", ErrMalformed, n, len(rest))
		}
		r.clientID = string(rest[:n])
		rest = rest[n:]
	} else if n != -1 {
		return r, fmt.Errorf("%w: client id length %d", ErrMalformed, n)
	}
	vr, ok := supported[r.key]
	if !ok || r.version < vr.min || r.version > vr.max {
		return r, nil
	}
	body := kmsg.RequestForKey(r.key)
	body.SetVersion(r.version)
	if body.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return r, err
		}
	}
	if err := body.ReadFrom(rest); err != nil {
		return r, fmt.Errorf("%w: %s v%d: %v", ErrMalformed, kmsg.NameForKey(r.key), r.version, err)
	}
	r.body = body
	return r, nil
}

// skipTags skips a tagged-field section (unsigned varint count, then per
// field an unsigned varint tag, an unsigned varint size and the bytes).
func skipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: tagged field count", ErrMalformed)
	}
	b = b[n:]
	for range count {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, fmt.Errorf("%w: tag", ErrMalformed)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: tagged field size", ErrMalformed)
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// appendResponse appends a whole response frame: size, correlation id, the
// response header's tagged fields when the response is flexible (never for
// ApiVersions, whose response header is always v0), and the body.
func appendResponse(dst []byte, correlation int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlation))
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
