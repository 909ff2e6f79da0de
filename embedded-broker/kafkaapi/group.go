package kafkaapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group coordinator runs Kafka's classic consumer-group protocol
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup); assignment strategies
// (range, round-robin, cooperative-sticky) are computed by the clients, so
// the coordinator only relays protocol metadata and assignments. Membership
// lives in memory: after a restart clients rejoin. Committed offsets are
// durable (offsets.go). One mutex guards every group; replies to blocked
// JoinGroup and SyncGroup requests go out on buffered channels after the
// mutex is released.

type groupState int

const (
	groupEmpty groupState = iota
	groupPreparing
	groupCompleting
	groupStable
)

func (s groupState) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"}[s]
}

type coordinator struct {
	s *Server

	mu     sync.Mutex
	groups map[string]*group
}

type group struct {
	logger       *slog.Logger
	name         string
	state        groupState
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	// pending holds member ids handed out by a MEMBER_ID_REQUIRED answer
	// (KIP-394) that have not joined yet, with when they were handed out.
	pending map[string]time.Time
	// rebalanceDeadline ends PreparingRebalance: members that have not
	// rejoined by then are removed.
	rebalanceDeadline time.Time
}

type member struct {
	id               string
	clientID         string
	host             string
	protocols        []kmsg.JoinGroupRequestProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	lastSeen         time.Time
	assignment       []byte
	join             chan *kmsg.JoinGroupResponse // pending JoinGroup, capacity 1
	sync             chan *kmsg.SyncGroupResponse // pending SyncGroup, capacity 1
}

// delivery is a reply to hand to a blocked request after unlocking.
type delivery struct {
	join *kmsg.JoinGroupResponse
	jch  chan *kmsg.JoinGroupResponse
	sync *kmsg.SyncGroupResponse
	sch  chan *kmsg.SyncGroupResponse
}

func deliver(ds []delivery) {
	for _, d := range ds {
		if d.jch != nil {
			d.jch <- d.join // capacity 1, one reply per request: never blocks
		}
		if d.sch != nil {
			d.sch <- d.sync
		}
	}
}

func newCoordinator(s *Server) *coordinator {
	return &coordinator{s: s, groups: map[string]*group{}}
}

// run ends rebalances whose deadline passed and expires members whose
// session ran out, every 100 ms, until ctx ends or stop closes.
func (co *coordinator) run(ctx context.Context, stop <-chan struct{}) {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case now := <-ticker.C:
			co.tick(now)
		}
	}
}

func (co *coordinator) tick(now time.Time) {
	var ds []delivery
	co.mu.Lock()
	for _, g := range co.groups {
		if g.state == groupPreparing && !now.Before(g.rebalanceDeadline) {
			for id, m := range g.members {
				if m.join == nil {
					co.s.logger.Info("group member did not rejoin in time", "group", g.name, "member", id)
					delete(g.members, id)
				}
			}
			ds = append(ds, g.completeJoinLocked()...)
			continue
		}
		if g.state == groupPreparing {
			continue // members waiting in JoinGroup do not heartbeat
		}
		expired := false
		for id, m := range g.members {
			if m.sync == nil && now.Sub(m.lastSeen) > m.sessionTimeout {
				co.s.logger.Info("group member session expired", "group", g.name, "member", id)
				delete(g.members, id)
				expired = true
			}
		}
		if expired {
			ds = append(ds, g.rebalanceLocked(now)...)
		}
	}
	co.mu.Unlock()
	deliver(ds)
}

// connClosed is called when a connection ends. Membership outlives
// connections (a member's session decides), as in Kafka.
func (co *coordinator) connClosed(*conn) {}

func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return clientID + "-" + hex.EncodeToString(b[:])
}

// rebalanceLocked moves the group to PreparingRebalance: members must
// rejoin within the largest rebalance timeout. An empty group goes Empty.
// Pending SyncGroups are answered REBALANCE_IN_PROGRESS.
func (g *group) rebalanceLocked(now time.Time) []delivery {
	var ds []delivery
	for _, m := range g.members {
		if m.sync != nil {
			ds = append(ds, delivery{sync: &kmsg.SyncGroupResponse{ErrorCode: kerr.RebalanceInProgress.Code}, sch: m.sync})
			m.sync = nil
		}
	}
	if len(g.members) == 0 {
		g.state, g.leader, g.protocol = groupEmpty, "", ""
		g.generation++
		return ds
	}
	if g.state != groupPreparing {
		var timeout time.Duration
		for _, m := range g.members {
			timeout = max(timeout, m.rebalanceTimeout)
		}
		g.state = groupPreparing
		g.rebalanceDeadline = now.Add(timeout)
	}
	return append(ds, g.maybeCompleteJoinLocked()...)
}

// maybeCompleteJoinLocked completes the join phase once every member has a
// pending JoinGroup.
func (g *group) maybeCompleteJoinLocked() []delivery {
	for _, m := range g.members {
		if m.join == nil {
			return nil
		}
	}
	return g.completeJoinLocked()
}

// completeJoinLocked starts a new generation with the members that joined:
// picks the protocol, the leader, and answers every JoinGroup (the leader's
// answer lists the members and their metadata).
func (g *group) completeJoinLocked() []delivery {
	if len(g.members) == 0 {
		g.state, g.leader, g.protocol = groupEmpty, "", ""
		g.generation++
		return nil
	}
	g.generation++
	g.state = groupCompleting
	g.protocol = g.chooseProtocolLocked()
	if _, ok := g.members[g.leader]; !ok {
		ids := make([]string, 0, len(g.members))
		for id := range g.members {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		g.leader = ids[0]
	}
	var list []kmsg.JoinGroupResponseMember
	for id, m := range g.members {
		list = append(list, kmsg.JoinGroupResponseMember{MemberID: id, ProtocolMetadata: m.metadata(g.protocol)})
	}
	slices.SortFunc(list, func(a, b kmsg.JoinGroupResponseMember) int { return compareStrings(a.MemberID, b.MemberID) })
	var ds []delivery
	now := time.Now()
	g.logger.Info("group rebalanced", "group", g.name, "generation", g.generation, "members", len(g.members),
		"protocol", g.protocol, "leader", g.leader)
	for id, m := range g.members {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.Generation, resp.LeaderID, resp.MemberID = g.generation, g.leader, id
		protocol, ptype := g.protocol, g.protocolType
		resp.Protocol, resp.ProtocolType = &protocol, &ptype
		if id == g.leader {
			resp.Members = list
		}
		ds = append(ds, delivery{join: resp, jch: m.join})
		m.join, m.assignment, m.lastSeen = nil, nil, now
	}
	return ds
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// chooseProtocolLocked picks the protocol every member supports that the
// most members list first (ties: the leader's order, then the name).
func (g *group) chooseProtocolLocked() string {
	votes := map[string]int{}
	var candidates []string
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.allSupportLocked(p.Name) && !slices.Contains(candidates, p.Name) {
				candidates = append(candidates, p.Name)
			}
		}
		for _, p := range m.protocols {
			if g.allSupportLocked(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	slices.Sort(candidates)
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func (g *group) allSupportLocked(name string) bool {
	for _, m := range g.members {
		if !m.supports(name) {
			return false
		}
	}
	return true
}

func (m *member) supports(name string) bool {
	return slices.ContainsFunc(m.protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == name })
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// groupLocked returns the named group, creating it when create is set.
func (co *coordinator) groupLocked(name string, create bool) *group {
	g := co.groups[name]
	if g == nil && create {
		g = &group{logger: co.s.logger, name: name, members: map[string]*member{}}
		co.groups[name] = g
	}
	return g
}

// checkMemberLocked validates a member id and generation the way
// Heartbeat, SyncGroup and OffsetCommit need.
func (g *group) checkMemberLocked(id string, generation int32) (*member, int16) {
	if g == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	m := g.members[id]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return m, kerr.IllegalGeneration.Code
	}
	return m, 0
}

func (g *group) pendingLocked(id string) bool {
	_, ok := g.pending[id]
	return ok
}

func (g *group) addPendingLocked(id string) {
	if g.pending == nil {
		g.pending = map[string]time.Time{}
	}
	now := time.Now()
	for other, at := range g.pending {
		if now.Sub(at) > 5*time.Minute {
			delete(g.pending, other) // never joined
		}
	}
	g.pending[id] = now
}
