package kafkaapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SASL (KIP-43, KIP-152): SaslHandshake v1 picks the mechanism, then
// SaslAuthenticate carries the tokens. PLAIN checks username and password;
// SCRAM-SHA-256/512 (RFC 5802, RFC 7677) proves the password without
// sending it, with keys derived per server from a random salt.

const scramIterations = 4096

var mechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

func (c *conn) saslHandshake(req *kmsg.SASLHandshakeRequest) *kmsg.SASLHandshakeResponse {
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.SupportedMechanisms = c.s.opts.Mechanisms
	switch {
	case len(c.s.opts.Credentials) == 0:
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case c.role != "":
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case !slices.Contains(c.s.opts.Mechanisms, req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	default:
		c.sasl = req.Mechanism
		// v0 (kafka-python 2.0): the SASL tokens follow as bare
		// size-prefixed frames instead of SaslAuthenticate requests.
		c.saslRaw = req.Version == 0
	}
	return resp
}

// rawSASL answers one bare SASL token (after SaslHandshake v0) with a bare
// size-prefixed token; a failure closes the connection, as Kafka does.
func (c *conn) rawSASL(token []byte) (reply, error) {
	var out []byte
	var err error
	if c.sasl == "PLAIN" {
		err = c.plain(token)
	} else {
		out, err = c.scramStep(token)
	}
	if err != nil {
		c.logger.Warn("kafka SASL authentication failed", "mechanism", c.sasl, "client_id", c.clientID, "err", err)
		return nil, fmt.Errorf("kafkaapi: SASL %s: authentication failed", c.sasl)
	}
	if c.role != "" {
		c.saslRaw = false
	}
	return ready(append(binary.BigEndian.AppendUint32(nil, uint32(len(out))), out...)), nil
}

// saslAuthenticate runs one step. A failed authentication is answered with
// SASL_AUTHENTICATION_FAILED and then the connection is closed, as Kafka
// does.
func (c *conn) saslAuthenticate(req request, body *kmsg.SASLAuthenticateRequest) (reply, error) {
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	var err error
	switch c.sasl {
	case "":
		err = errors.New("SaslAuthenticate before SaslHandshake")
	case "PLAIN":
		err = c.plain(body.SASLAuthBytes)
	default:
		resp.SASLAuthBytes, err = c.scramStep(body.SASLAuthBytes)
	}
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "authentication failed"
		resp.ErrorMessage = &msg
		c.logger.Warn("kafka SASL authentication failed", "mechanism", c.sasl, "client_id", c.clientID, "err", err)
		return &closingReply{frame: respondBytes(req, resp)}, nil
	}
	return respond(req, resp), nil
}

// closingReply writes its frame and then ends the connection.
type closingReply struct{ frame []byte }

func (r *closingReply) wait(_ context.Context, out *output) error {
	out.bytes(r.frame)
	if err := out.flush(); err != nil {
		return err
	}
	return errors.New("kafkaapi: closing after failed authentication")
}

func (c *conn) plain(token []byte) error {
	// authzid NUL authcid NUL passwd
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 {
		return errors.New("PLAIN: malformed token")
	}
	name, password := string(parts[1]), parts[2]
	if len(parts[0]) > 0 && string(parts[0]) != name {
		return errors.New("PLAIN: authorization id differs from the user")
	}
	for _, cred := range c.s.opts.Credentials {
		if cred.Username == name && subtle.ConstantTimeCompare([]byte(cred.Password), password) == 1 {
			c.role = cred.Role
			return nil
		}
	}
	return fmt.Errorf("PLAIN: bad user or password for %q", name)
}

// scramServer is one SCRAM exchange's state: the keys of every credential
// with the username (the proof says which password the client used).
type scramServer struct {
	hash                   func() hash.Hash
	user                   string
	clientFirstBare, nonce string
	serverFirst            string
	keys                   []scramKeys
}

type scramKeys struct {
	role                 Role // "" for the decoy of an unknown user
	storedKey, serverKey []byte
}

func (c *conn) scramStep(msg []byte) ([]byte, error) {
	if c.scram == nil {
		return c.scramFirst(string(msg))
	}
	return c.scramFinal(string(msg))
}

func (c *conn) scramFirst(msg string) ([]byte, error) {
	h := sha256.New
	if c.sasl == "SCRAM-SHA-512" {
		h = sha512.New
	}
	// gs2 header: "n,," (no channel binding), then the bare message.
	gs2, bare, ok := cutN(msg, ",", 2)
	if !ok || !strings.HasPrefix(gs2, "n,") && !strings.HasPrefix(gs2, "y,") {
		return nil, errors.New("SCRAM: bad client-first message")
	}
	attrs := scramAttrs(bare)
	user := strings.NewReplacer("=2C", ",", "=3D", "=").Replace(attrs["n"])
	if attrs["r"] == "" {
		return nil, errors.New("SCRAM: no client nonce")
	}
	var nonce [18]byte
	_, _ = rand.Read(nonce[:])
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	st := &scramServer{hash: h, user: user, clientFirstBare: bare,
		nonce: attrs["r"] + base64.RawStdEncoding.EncodeToString(nonce[:])}
	for _, cred := range c.s.opts.Credentials {
		if cred.Username == user {
			k, err := deriveScram(h, cred.Password, salt, cred.Role)
			if err != nil {
				return nil, err
			}
			st.keys = append(st.keys, k)
		}
	}
	if len(st.keys) == 0 {
		// An unknown user still gets a challenge (keys of a random
		// password), so that names cannot be probed; the proof then fails.
		k, err := deriveScram(h, base64.StdEncoding.EncodeToString(nonce[:]), salt, "")
		if err != nil {
			return nil, err
		}
		st.keys = append(st.keys, k)
	}
	st.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", st.nonce, base64.StdEncoding.EncodeToString(salt), scramIterations)
	c.scram = st
	return []byte(st.serverFirst), nil
}

func deriveScram(h func() hash.Hash, password string, salt []byte, role Role) (scramKeys, error) {
	salted, err := pbkdf2.Key(h, password, salt, scramIterations, h().Size())
	if err != nil {
		return scramKeys{}, err
	}
	stored := h()
	stored.Write(hmacOf(h, salted, "Client Key"))
	return scramKeys{role: role, storedKey: stored.Sum(nil), serverKey: hmacOf(h, salted, "Server Key")}, nil
}

func (c *conn) scramFinal(msg string) ([]byte, error) {
	st := c.scram
	c.scram = nil
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, errors.New("SCRAM: client-final without proof")
	}
	withoutProof := msg[:i]
	attrs := scramAttrs(msg)
	// The nonce must end with ours: librdkafka sends its client nonce
	// again in front of the combined one, and Kafka's server accepts that
	// (it checks the suffix), so we do too.
	if !strings.HasSuffix(attrs["r"], st.nonce) {
		return nil, errors.New("SCRAM: nonce mismatch")
	}
	proof, err := base64.StdEncoding.DecodeString(attrs["p"])
	if err != nil || len(proof) != st.hash().Size() {
		return nil, errors.New("SCRAM: malformed proof")
	}
	authMessage := st.clientFirstBare + "," + st.serverFirst + "," + withoutProof
	for _, k := range st.keys {
		signature := hmacOf(st.hash, k.storedKey, authMessage)
		clientKey := make([]byte, len(proof))
		for j := range proof {
			clientKey[j] = proof[j] ^ signature[j]
		}
		sum := st.hash()
		sum.Write(clientKey)
		if subtle.ConstantTimeCompare(sum.Sum(nil), k.storedKey) == 1 && k.role != "" {
			c.role = k.role
			return []byte("v=" + base64.StdEncoding.EncodeToString(hmacOf(st.hash, k.serverKey, authMessage))), nil
		}
	}
	return nil, fmt.Errorf("SCRAM: bad proof for %q", st.user)
}

func hmacOf(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func scramAttrs(msg string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(msg, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && len(k) == 1 {
			out[k] = v
		}
	}
	return out
}

// cutN splits s after the n-th sep: "n,,rest" with n=2 → "n,", "rest".
func cutN(s, sep string, n int) (string, string, bool) {
	at := 0
	for range n {
		i := strings.Index(s[at:], sep)
		if i < 0 {
			return "", "", false
		}
		at += i + len(sep)
	}
	return s[:at], s[at:], true
}
