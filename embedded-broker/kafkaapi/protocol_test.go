package kafkaapi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchEncodingMatchesKmsg: the hand-written Fetch response (split
// around the record bytes for sendfile) is byte for byte what kmsg encodes,
// for every served version.
func TestFetchEncodingMatchesKmsg(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	ts.topic("a", 2)
	ts.topic("bb", 1)
	for i := range 5 {
		if _, err := ts.log.AppendBatches(ctxT(t, 5*time.Second), "a", int32(i%2), testBatch(t, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	for v := int16(4); v <= 11; v++ {
		body := kmsg.NewPtrFetchRequest()
		body.Version = v
		for _, topic := range []string{"a", "bb", "missing"} {
			rt := kmsg.FetchRequestTopic{Topic: topic}
			for p := range int32(2) {
				rt.Partitions = append(rt.Partitions, kmsg.FetchRequestTopicPartition{Partition: p, FetchOffset: int64(p), PartitionMaxBytes: 1 << 20})
			}
			body.Topics = append(body.Topics, rt)
		}
		body.MaxBytes = 1 << 20
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		fr := &fetchReply{c: newConn(ts.srv, a), req: request{version: v, correlation: 77}, body: body}
		parts, _, _ := fr.read()
		records := map[[2]int]([]byte){}
		for ti := range parts {
			for pi, p := range parts[ti] {
				recs := make([]byte, p.records.Len())
				if _, err := p.records.ReadAt(recs, 0); err != nil && !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				records[[2]int{ti, pi}] = recs
			}
		}
		out := &output{c: fr.c}
		fr.encode(out, parts)

		want := kmsg.NewPtrFetchResponse()
		want.Version = v
		for ti, rt := range body.Topics {
			t := kmsg.FetchResponseTopic{Topic: rt.Topic}
			for pi, p := range parts[ti] {
				recs := records[[2]int{ti, pi}]
				t.Partitions = append(t.Partitions, kmsg.FetchResponseTopicPartition{Partition: p.partition, ErrorCode: p.errorCode,
					HighWatermark: p.hwm, LastStableOffset: p.hwm, LogStartOffset: p.logStart, PreferredReadReplica: -1, RecordBatches: recs})
			}
			want.Topics = append(want.Topics, t)
		}
		wantFrame := appendResponse(nil, 77, want)
		// The records went through output.batches' buffered path (no TCP
		// conn here).
		got := out.buf
		if !bytes.Equal(got, wantFrame) {
			t.Fatalf("v%d: our %d bytes differ from kmsg's %d", v, len(got), len(wantFrame))
		}
		// And kmsg decodes ours, records included.
		var back kmsg.FetchResponse
		back.Version = v
		if err := back.ReadFrom(got[8:]); err != nil {
			t.Fatalf("v%d: kmsg cannot decode ours: %v", v, err)
		}
		if n := len(back.Topics[0].Partitions[0].RecordBatches); n == 0 {
			t.Fatalf("v%d: no records in partition a/0", v)
		}
		if code := back.Topics[2].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("v%d: missing topic answered %d", v, code)
		}
	}
}

// testBatch is a valid uncompressed client batch of n records.
func testBatch(t testing.TB, n int) []byte {
	var records []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: bytes.Repeat([]byte{'v'}, 10+i)}
		body := r.AppendTo(nil)[1:]
		records = binary.AppendVarint(records, int64(len(body)))
		records = append(records, body...)
	}
	b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), FirstTimestamp: 1000, MaxTimestamp: 1000,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: records}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	fixCRC(out)
	if _, err := commitlog.ValidateBatches(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// rawConn speaks frames to a server without a client library.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// roundTrip sends a request with the given key and version (body already
// encoded) and returns the response frame after the correlation id.
func (rc *rawConn) roundTrip(key, version int16, corr int32, body []byte) ([]byte, error) {
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = binary.BigEndian.AppendUint16(frame, uint16(key))
	frame = binary.BigEndian.AppendUint16(frame, uint16(version))
	frame = binary.BigEndian.AppendUint32(frame, uint32(corr))
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "test"...)
	frame = append(frame, body...)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	rc.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.nc.Write(frame); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(rc.br, size[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.br, resp); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(resp)); got != corr {
		rc.t.Fatalf("correlation %d, want %d", got, corr)
	}
	return resp[4:], nil
}

// TestUnsupportedRequests: a newer ApiVersions gets Kafka's downgrade
// answer; an API that is not served gets UNSUPPORTED_VERSION in its own
// response; a request no response can be built for closes the connection;
// the served list is what the issue names.
func TestUnsupportedRequests(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	rc := dialRaw(t, ts.addr)
	resp, err := rc.roundTrip(kmsg.ApiVersions.Int16(), 9, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var av kmsg.ApiVersionsResponse
	if err := av.ReadFrom(resp); err != nil || av.ErrorCode != kerr.UnsupportedVersion.Code || len(av.ApiKeys) != len(supported) {
		t.Fatalf("ApiVersions v9: %v, %+v", err, av)
	}
	want := map[kmsg.Key][2]int16{kmsg.ApiVersions: {0, 3}, kmsg.Metadata: {0, 8}, kmsg.Produce: {0, 8}, kmsg.Fetch: {4, 11},
		kmsg.ListOffsets: {1, 5}, kmsg.FindCoordinator: {0, 2}, kmsg.JoinGroup: {0, 5}, kmsg.SyncGroup: {0, 3},
		kmsg.Heartbeat: {0, 3}, kmsg.LeaveGroup: {0, 3}, kmsg.OffsetCommit: {2, 7}, kmsg.OffsetFetch: {1, 5},
		kmsg.InitProducerID: {0, 1}, kmsg.CreateTopics: {2, 4}, kmsg.DescribeConfigs: {1, 3}}
	for _, k := range av.ApiKeys {
		if w, ok := want[kmsg.Key(k.ApiKey)]; ok && (k.MinVersion != w[0] || k.MaxVersion != w[1]) {
			t.Fatalf("%s advertised %d-%d, want %d-%d", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, w[0], w[1])
		}
	}
	// DeleteTopics v1 is not served: the answer carries the error code in
	// the shape kmsg expects.
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version = 1
	resp, err = rc.roundTrip(kmsg.DeleteTopics.Int16(), 1, 2, del.AppendTo(nil))
	if err == nil {
		// DeleteTopics has no top-level error code: the connection closes.
		t.Fatalf("DeleteTopics v1 answered %x; want the connection closed", resp)
	}
	// FindCoordinator v3 (flexible) is past the served range but has a
	// top-level error code.
	rc = dialRaw(t, ts.addr)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 3
	fc.CoordinatorKey = "g"
	frame := append([]byte{0}, fc.AppendTo(nil)...) // header tags, then the body
	resp, err = rc.roundTrip(kmsg.FindCoordinator.Int16(), 3, 4, frame)
	if err != nil {
		t.Fatal(err)
	}
	var fr kmsg.FindCoordinatorResponse
	fr.Version = 3
	if err := fr.ReadFrom(resp[1:]); err != nil || fr.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("FindCoordinator v3: %v, code %d", err, fr.ErrorCode)
	}
}

// FuzzParseRequest: any frame either fails with ErrMalformed or decodes;
// a decoded body re-encodes (kmsg) and decodes to an equal encoding.
func FuzzParseRequest(f *testing.F) {
	add := func(key, version int16, body kmsg.Request) {
		body.SetVersion(version)
		frame := binary.BigEndian.AppendUint16(nil, uint16(key))
		frame = binary.BigEndian.AppendUint16(frame, uint16(version))
		frame = binary.BigEndian.AppendUint32(frame, 7)
		frame = binary.BigEndian.AppendUint16(frame, 1)
		frame = append(frame, 'c')
		if body.IsFlexible() {
			frame = append(frame, 0)
		}
		f.Add(body.AppendTo(frame))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
	add(3, 8, md)
	pr := kmsg.NewPtrProduceRequest()
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: []byte{1, 2, 3}}}}}
	add(0, 8, pr)
	add(18, 3, kmsg.NewPtrApiVersionsRequest())
	add(11, 5, kmsg.NewPtrJoinGroupRequest())
	f.Add([]byte{0, 1})
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := parseRequest(frame)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if req.body == nil {
			if vr, ok := supported[req.key]; ok && req.version >= vr.min && req.version <= vr.max {
				t.Fatalf("served %d v%d left undecoded", req.key, req.version)
			}
			return
		}
		enc := req.body.AppendTo(nil)
		again := kmsg.RequestForKey(req.key)
		again.SetVersion(req.version)
		if err := again.ReadFrom(enc); err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if !bytes.Equal(again.AppendTo(nil), enc) {
			t.Fatal("re-encoding is not stable")
		}
	})
}

// fixCRC recomputes a batch's CRC in place.
func fixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], crc32c(b[21:]))
	return b
}

// TestProduceEdgeCases: message sets (Produce v0-2, magic 0/1) are refused
// per partition with UNSUPPORTED_FOR_MESSAGE_FORMAT; acks=0 appends without
// answering (the next request's answer comes first); a corrupt batch gets
// CORRUPT_MESSAGE and appends nothing.
func TestProduceEdgeCases(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	ts.topic("t", 1)
	rc := dialRaw(t, ts.addr)
	produce := func(version int16, acks int16, records []byte) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = version, acks, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: records}}}}
		return req
	}
	code := func(resp []byte, version int16) int16 {
		var pr kmsg.ProduceResponse
		pr.Version = version
		if err := pr.ReadFrom(resp); err != nil {
			t.Fatal(err)
		}
		return pr.Topics[0].Partitions[0].ErrorCode
	}
	// A v1 message set: offset, size, crc, magic 1, attributes, timestamp, key, value.
	msgSet := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 22, 1, 2, 3, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0}
	resp, err := rc.roundTrip(0, 2, 1, produce(2, 1, msgSet).AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c := code(resp, 2); c != kerr.UnsupportedForMessageFormat.Code {
		t.Fatalf("message set: code %d", c)
	}
	bad := testBatch(t, 2)
	bad[len(bad)-1] ^= 0xff
	resp, err = rc.roundTrip(0, 8, 2, produce(8, -1, bad).AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c := code(resp, 8); c != kerr.CorruptMessage.Code {
		t.Fatalf("corrupt batch: code %d", c)
	}
	// acks=0: no answer; the metadata request after it is answered first.
	frame := binary.BigEndian.AppendUint32(nil, 0)
	for _, part := range [][]byte{{0, 0, 0, 8, 0, 0, 0, 3, 0, 0}, produce(8, 0, testBatch(t, 3)).AppendTo(nil)} {
		frame = append(frame, part...)
	}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := rc.nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 1
	if _, err := rc.roundTrip(3, 1, 4, md.AppendTo(nil)); err != nil {
		t.Fatalf("after acks=0: %v", err)
	}
	if _, end, _ := ts.log.Offsets("t", 0); end != 3 {
		t.Fatalf("end %d after the acks=0 produce, want 3", end)
	}
}

// TestMalformedFramesCloseTheConnection: a frame past the size limit or one
// kmsg cannot decode closes that connection (logged); the server keeps
// serving others.
func TestMalformedFramesCloseTheConnection(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", func(o *Options) { o.MaxRequestBytes = 1 << 20 })
	for name, frame := range map[string][]byte{
		"oversize":  binary.BigEndian.AppendUint32(nil, 2<<20),
		"truncated": {0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0, 1, 'c', 0, 0, 0},
		"negative":  {0xff, 0xff, 0xff, 0xff},
	} {
		rc := dialRaw(t, ts.addr)
		rc.nc.Write(frame)
		rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := rc.br.ReadByte(); err == nil {
			t.Fatalf("%s: the server answered", name)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: the connection stayed open", name)
		}
	}
	rc := dialRaw(t, ts.addr)
	if _, err := rc.roundTrip(18, 0, 1, nil); err != nil {
		t.Fatalf("a fresh connection is not served: %v", err)
	}
}

// TestMaxConnections: past the limit a connection is closed at once; when
// one leaves, a new one is served.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", func(o *Options) { o.MaxConnections = 2 })
	first, second := dialRaw(t, ts.addr), dialRaw(t, ts.addr)
	for _, rc := range []*rawConn{first, second} {
		if _, err := rc.roundTrip(18, 0, 1, nil); err != nil {
			t.Fatalf("within the limit: %v", err)
		}
	}
	third := dialRaw(t, ts.addr)
	if _, err := third.roundTrip(18, 0, 1, nil); err == nil {
		t.Fatal("a third connection was served")
	}
	first.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rc := dialRaw(t, ts.addr)
		if _, err := rc.roundTrip(18, 0, 1, nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one left")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawFrame encodes a request frame as rawConn.roundTrip does.
func rawFrame(key, version int16, corr int32, body []byte) []byte {
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = binary.BigEndian.AppendUint16(frame, uint16(key))
	frame = binary.BigEndian.AppendUint16(frame, uint16(version))
	frame = binary.BigEndian.AppendUint32(frame, uint32(corr))
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "test"...)
	frame = append(frame, body...)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}

// readResponse reads one response frame and returns it after the
// correlation id, which must be corr.
func (rc *rawConn) readResponse(corr int32) []byte {
	rc.t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(rc.br, size[:]); err != nil {
		rc.t.Fatal(err)
	}
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.br, resp); err != nil {
		rc.t.Fatal(err)
	}
	if got := int32(binary.BigEndian.Uint32(resp)); got != corr {
		rc.t.Fatalf("correlation %d, want %d", got, corr)
	}
	return resp[4:]
}

// TestFrameBufferReuse: a connection reads Produce frames into one reused
// buffer, so nothing may keep pointing into a frame after it is handled.
// Pipelined produce requests (the second frame read over the first while
// the first waits for its fsync) must store their own bytes, and a
// JoinGroup's protocol metadata, kept by the group and answered later,
// must survive the Produce frame read after it on the same connection.
func TestFrameBufferReuse(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	ts.topic("t", 1)
	rc := dialRaw(t, ts.addr)
	rc.nc.SetDeadline(time.Now().Add(10 * time.Second))
	batchOf := func(fill byte) []byte {
		var records []byte
		for i := range 50 {
			r := kmsg.Record{OffsetDelta: int32(i), Value: bytes.Repeat([]byte{fill}, 100)}
			body := r.AppendTo(nil)[1:]
			records = binary.AppendVarint(records, int64(len(body)))
			records = append(records, body...)
		}
		b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: 49, FirstTimestamp: 1000, MaxTimestamp: 1000,
			ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 50, Records: records}
		out := b.AppendTo(nil)
		binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
		return fixCRC(out)
	}
	produce := func(fill byte) []byte {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 8, -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batchOf(fill)}}}}
		return req.AppendTo(nil)
	}
	metadata := bytes.Repeat([]byte("member-metadata!"), 64)
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.SessionTimeoutMillis, join.ProtocolType = 0, "g", 10000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: metadata}}

	var frames []byte
	for i, fill := range []byte("abcd") {
		frames = append(frames, rawFrame(0, 8, int32(i), produce(fill))...)
	}
	frames = append(frames, rawFrame(11, 0, 4, join.AppendTo(nil))...)
	frames = append(frames, rawFrame(0, 8, 5, produce('e'))...)
	if _, err := rc.nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	for i := range int32(4) {
		var pr kmsg.ProduceResponse
		pr.Version = 8
		if err := pr.ReadFrom(rc.readResponse(i)); err != nil {
			t.Fatal(err)
		}
		if p := pr.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != int64(i)*50 {
			t.Fatalf("produce %d: code %d, base %d", i, p.ErrorCode, p.BaseOffset)
		}
	}
	var jr kmsg.JoinGroupResponse
	jr.Version = 0
	if err := jr.ReadFrom(rc.readResponse(4)); err != nil {
		t.Fatal(err)
	}
	if jr.ErrorCode != 0 || len(jr.Members) != 1 || !bytes.Equal(jr.Members[0].ProtocolMetadata, metadata) {
		t.Fatalf("join: code %d, members %d, metadata intact %v", jr.ErrorCode, len(jr.Members),
			len(jr.Members) == 1 && bytes.Equal(jr.Members[0].ProtocolMetadata, metadata))
	}
	rc.readResponse(5)
	evs, err := ts.log.Read("t", 0, 0, 1000, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 250 {
		t.Fatalf("%d records, want 250", len(evs))
	}
	for i, ev := range evs {
		if want := bytes.Repeat([]byte{"abcde"[i/50]}, 100); !bytes.Equal(ev.Value, want) {
			t.Fatalf("record %d: value %.10q..., want %.10q...", i, ev.Value, want)
		}
	}
}
