package kafkaapi

import (
	"context"
	"fmt"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkpointGroup names a Kafka consumer group in the log's checkpoint
// store, apart from the pipelines' own checkpoint groups.
func checkpointGroup(group string) string { return "kafka-group:" + group }

// handleGroup dispatches the group APIs, FindCoordinator and the offset
// APIs; all need the consumer role.
func (c *conn) handleGroup(ctx context.Context, req request) (reply, error) {
	switch body := req.body.(type) {
	case *kmsg.FindCoordinatorRequest:
		return respond(req, c.findCoordinator(body)), nil
	case *kmsg.JoinGroupRequest:
		return c.joinGroup(req, body), nil
	case *kmsg.SyncGroupRequest:
		return c.syncGroup(req, body), nil
	case *kmsg.HeartbeatRequest:
		return respond(req, c.heartbeat(body)), nil
	case *kmsg.LeaveGroupRequest:
		return respond(req, c.leaveGroup(body)), nil
	case *kmsg.OffsetCommitRequest:
		return c.offsetCommit(req, body), nil
	case *kmsg.OffsetFetchRequest:
		return respond(req, c.offsetFetch(ctx, body)), nil
	case *kmsg.DescribeGroupsRequest:
		return respond(req, c.describeGroups(body)), nil
	}
	return nil, fmt.Errorf("kafkaapi: %s has no handler", kmsg.NameForKey(req.key))
}

func (c *conn) findCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	resp := kmsg.NewPtrFindCoordinatorResponse()
	if req.CoordinatorType != 0 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		msg := "transactions are not supported"
		resp.ErrorMessage = &msg
		return resp
	}
	if !c.may(RoleConsumer) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp
	}
	resp.Host, resp.Port = c.s.advertised()
	resp.NodeID = 0
	return resp
}

// joinReply waits for the rebalance a JoinGroup is part of.
type joinReply struct {
	req request
	ch  chan *kmsg.JoinGroupResponse
}

func (r *joinReply) wait(ctx context.Context, out *output) error {
	select {
	case resp := <-r.ch:
		out.bytes(respondBytes(r.req, resp))
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func respondBytes(req request, resp kmsg.Response) []byte {
	resp.SetVersion(req.version)
	return appendResponse(nil, req.correlation, resp)
}

func joinError(req request, code int16, memberID string) reply {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.ErrorCode, resp.MemberID, resp.Generation = code, memberID, -1
	return respond(req, resp)
}

func (c *conn) joinGroup(req request, body *kmsg.JoinGroupRequest) reply {
	switch {
	case !c.may(RoleConsumer):
		return joinError(req, kerr.GroupAuthorizationFailed.Code, body.MemberID)
	case body.Group == "":
		return joinError(req, kerr.InvalidGroupID.Code, body.MemberID)
	case body.InstanceID != nil:
		// Static membership would need membership that outlives sessions.
		return joinError(req, kerr.UnsupportedVersion.Code, body.MemberID)
	case len(body.Protocols) == 0 || body.ProtocolType == "":
		return joinError(req, kerr.InconsistentGroupProtocol.Code, body.MemberID)
	}
	session := time.Duration(body.SessionTimeoutMillis) * time.Millisecond
	if session < time.Second || session > c.s.opts.SessionTimeoutMax {
		return joinError(req, kerr.InvalidSessionTimeout.Code, body.MemberID)
	}
	rebalance := session
	if req.version >= 1 && body.RebalanceTimeoutMillis > 0 {
		rebalance = time.Duration(body.RebalanceTimeoutMillis) * time.Millisecond
	}
	co := c.s.groups
	co.mu.Lock()
	g := co.groupLocked(body.Group, true)
	id := body.MemberID
	code := int16(0)
	switch {
	case g.protocolType != "" && len(g.members) > 0 && g.protocolType != body.ProtocolType:
		code = kerr.InconsistentGroupProtocol.Code
	case id == "" && req.version >= 4:
		// KIP-394: the member learns its id first and joins with it.
		id = newMemberID(c.clientID)
		code = kerr.MemberIDRequired.Code
	case id == "":
		id = newMemberID(c.clientID)
	case g.members[id] == nil && !g.pendingLocked(id):
		code = kerr.UnknownMemberID.Code
	}
	if code != 0 {
		if code == kerr.MemberIDRequired.Code {
			g.addPendingLocked(id)
		}
		co.mu.Unlock()
		return joinError(req, code, id)
	}
	if !g.compatibleLocked(id, body.Protocols) {
		co.mu.Unlock()
		return joinError(req, kerr.InconsistentGroupProtocol.Code, id)
	}
	m := g.members[id]
	if m == nil {
		m = &member{id: id}
		g.members[id] = m
		delete(g.pending, id)
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	if m.join != nil {
		// A retried join replaces the earlier one, which is answered so
		// its connection is not left waiting.
		old := m.join
		defer func() { old <- &kmsg.JoinGroupResponse{ErrorCode: kerr.RebalanceInProgress.Code, Generation: -1} }()
	}
	m.clientID, m.protocols, m.sessionTimeout, m.rebalanceTimeout = c.clientID, body.Protocols, session, rebalance
	m.host = "/" + c.remoteHost()
	m.join, m.lastSeen = ch, time.Now()
	g.protocolType = body.ProtocolType
	ds := g.rebalanceLocked(time.Now())
	co.mu.Unlock()
	deliver(ds)
	return &joinReply{req: req, ch: ch}
}

// compatibleLocked reports whether protocols shares a name with what every
// member but id supports.
func (g *group) compatibleLocked(id string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	for _, p := range protocols {
		ok := true
		for otherID, other := range g.members {
			if otherID != id && !other.supports(p.Name) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

type syncReply struct {
	req request
	ch  chan *kmsg.SyncGroupResponse
}

func (r *syncReply) wait(ctx context.Context, out *output) error {
	select {
	case resp := <-r.ch:
		out.bytes(respondBytes(r.req, resp))
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func syncError(req request, code int16) reply {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = code
	return respond(req, resp)
}

func (c *conn) syncGroup(req request, body *kmsg.SyncGroupRequest) reply {
	if !c.may(RoleConsumer) {
		return syncError(req, kerr.GroupAuthorizationFailed.Code)
	}
	co := c.s.groups
	co.mu.Lock()
	g := co.groupLocked(body.Group, false)
	m, code := g.checkMemberLocked(body.MemberID, body.Generation)
	if code == 0 && g.state == groupPreparing {
		code = kerr.RebalanceInProgress.Code
	}
	if code != 0 {
		co.mu.Unlock()
		return syncError(req, code)
	}
	m.lastSeen = time.Now()
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	var ds []delivery
	switch {
	case g.state == groupStable:
		ds = append(ds, delivery{sync: g.syncResponseLocked(m), sch: ch})
	case body.MemberID == g.leader:
		for _, a := range body.GroupAssignment {
			if am := g.members[a.MemberID]; am != nil {
				am.assignment = a.MemberAssignment
			}
		}
		g.state = groupStable
		ds = append(ds, delivery{sync: g.syncResponseLocked(m), sch: ch})
		for _, other := range g.members {
			if other.sync != nil {
				ds = append(ds, delivery{sync: g.syncResponseLocked(other), sch: other.sync})
				other.sync = nil
			}
		}
	default:
		m.sync = ch
	}
	co.mu.Unlock()
	deliver(ds)
	return &syncReply{req: req, ch: ch}
}

func (g *group) syncResponseLocked(m *member) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	protocol, ptype := g.protocol, g.protocolType
	resp.Protocol, resp.ProtocolType = &protocol, &ptype
	resp.MemberAssignment = m.assignment
	return resp
}

func (c *conn) heartbeat(body *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	if !c.may(RoleConsumer) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp
	}
	co := c.s.groups
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groupLocked(body.Group, false)
	m, code := g.checkMemberLocked(body.MemberID, body.Generation)
	if m != nil {
		m.lastSeen = time.Now()
	}
	if code == 0 && g.state == groupPreparing {
		code = kerr.RebalanceInProgress.Code
	}
	resp.ErrorCode = code
	return resp
}

func (c *conn) leaveGroup(body *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	if !c.may(RoleConsumer) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp
	}
	ids := []string{body.MemberID}
	if body.Version >= 3 {
		ids = ids[:0]
		for _, m := range body.Members {
			ids = append(ids, m.MemberID)
		}
	}
	co := c.s.groups
	co.mu.Lock()
	g := co.groupLocked(body.Group, false)
	var ds []delivery
	left := false
	for _, id := range ids {
		lm := kmsg.LeaveGroupResponseMember{MemberID: id}
		if g == nil || g.members[id] == nil {
			lm.ErrorCode = kerr.UnknownMemberID.Code
		} else {
			if m := g.members[id]; m.join != nil {
				ds = append(ds, delivery{join: &kmsg.JoinGroupResponse{ErrorCode: kerr.UnknownMemberID.Code, Generation: -1}, jch: m.join})
			}
			delete(g.members, id)
			left = true
		}
		resp.Members = append(resp.Members, lm)
	}
	if left {
		ds = append(ds, g.rebalanceLocked(time.Now())...)
	}
	co.mu.Unlock()
	deliver(ds)
	if body.Version < 3 && len(resp.Members) == 1 {
		resp.ErrorCode = resp.Members[0].ErrorCode
	}
	return resp
}

// offsetCommitReply writes the offsets durably on the writer goroutine.
type offsetCommitReply struct {
	c       *conn
	req     request
	resp    *kmsg.OffsetCommitResponse
	group   string
	offsets []commitlog.CommittedOffset
}

func (c *conn) offsetCommit(req request, body *kmsg.OffsetCommitRequest) reply {
	resp := kmsg.NewPtrOffsetCommitResponse()
	code := int16(0)
	switch {
	case !c.may(RoleConsumer):
		code = kerr.GroupAuthorizationFailed.Code
	case body.Group == "":
		code = kerr.InvalidGroupID.Code
	default:
		code = c.s.groups.checkCommit(body.Group, body.MemberID, body.Generation)
	}
	r := &offsetCommitReply{c: c, req: req, resp: resp, group: body.Group}
	for _, rt := range body.Topics {
		t := kmsg.OffsetCommitResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			pcode := code
			if pcode == 0 {
				if _, _, err := c.s.log.Offsets(rt.Topic, rp.Partition); err != nil {
					pcode = errorCode(err)
				} else {
					r.offsets = append(r.offsets, commitlog.CommittedOffset{Topic: rt.Topic, Partition: rp.Partition, Next: rp.Offset})
				}
			}
			t.Partitions = append(t.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: pcode})
		}
		resp.Topics = append(resp.Topics, t)
	}
	return r
}

// checkCommit: a commit with generation -1 and no member id is a
// standalone consumer's (allowed while the group has no members); others
// must name a current member and generation.
func (co *coordinator) checkCommit(groupID, memberID string, generation int32) int16 {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groupLocked(groupID, false)
	if generation < 0 && memberID == "" {
		if g != nil && len(g.members) > 0 {
			return kerr.UnknownMemberID.Code
		}
		return 0
	}
	m, code := g.checkMemberLocked(memberID, generation)
	if code != 0 {
		return code
	}
	if g.state == groupCompleting {
		return kerr.RebalanceInProgress.Code
	}
	m.lastSeen = time.Now()
	return 0
}

func (r *offsetCommitReply) wait(ctx context.Context, out *output) error {
	if len(r.offsets) > 0 {
		if err := r.c.s.log.CommitOffsets(ctx, checkpointGroup(r.group), r.offsets); err != nil {
			code := errorCode(err)
			r.c.logger.Error("offset commit failed", "group", r.group, "err", err)
			for ti := range r.resp.Topics {
				for pi := range r.resp.Topics[ti].Partitions {
					if r.resp.Topics[ti].Partitions[pi].ErrorCode == 0 {
						r.resp.Topics[ti].Partitions[pi].ErrorCode = code
					}
				}
			}
		}
	}
	out.bytes(respondBytes(r.req, r.resp))
	return nil
}

func (c *conn) offsetFetch(ctx context.Context, body *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	if !c.may(RoleConsumer) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp
	}
	group := checkpointGroup(body.Group)
	empty := ""
	topics := body.Topics
	if topics == nil {
		all, err := c.s.log.GroupOffsets(group)
		if err != nil {
			resp.ErrorCode = errorCode(err)
			return resp
		}
		for _, o := range all {
			if n := len(topics); n == 0 || topics[n-1].Topic != o.Topic {
				topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: o.Topic})
			}
			topics[len(topics)-1].Partitions = append(topics[len(topics)-1].Partitions, o.Partition)
		}
	}
	for _, rt := range topics {
		t := kmsg.OffsetFetchResponseTopic{Topic: rt.Topic}
		for _, p := range rt.Partitions {
			tp := kmsg.OffsetFetchResponseTopicPartition{Partition: p, Offset: -1, LeaderEpoch: -1, Metadata: &empty}
			next, ok, err := c.s.log.Committed(ctx, group, rt.Topic, p)
			if err != nil {
				tp.ErrorCode = errorCode(err)
			} else if ok {
				tp.Offset = next
			}
			t.Partitions = append(t.Partitions, tp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// describeGroups reports each group's state, protocol and members with
// their metadata and assignments (kafka-consumer-groups --describe, kadm).
func (c *conn) describeGroups(body *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	co := c.s.groups
	co.mu.Lock()
	defer co.mu.Unlock()
	for _, name := range body.Groups {
		rg := kmsg.DescribeGroupsResponseGroup{Group: name, State: "Dead"}
		g := co.groupLocked(name, false)
		switch {
		case !c.may(RoleConsumer):
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case g != nil:
			rg.State, rg.ProtocolType, rg.Protocol = g.state.String(), g.protocolType, g.protocol
			if g.state == groupEmpty {
				rg.State = "Empty"
			}
			for id, m := range g.members {
				rg.Members = append(rg.Members, kmsg.DescribeGroupsResponseGroupMember{MemberID: id, ClientID: m.clientID,
					ClientHost: m.host, ProtocolMetadata: m.metadata(g.protocol), MemberAssignment: m.assignment})
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}
