package sqsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateLayout  = "20060102T150405Z"
	// maxClockSkew is how far X-Amz-Date may be from the server's clock, as
	// AWS allows; it bounds how long a captured request can be replayed.
	maxClockSkew = 15 * time.Minute
)

// sigV4Auth is the parsed Authorization header.
type sigV4Auth struct {
	accessKeyID   string
	date          string // YYYYMMDD of the credential scope
	region        string
	service       string
	signedHeaders []string
	signature     []byte
}

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
// SignedHeaders=a;b, Signature=hex".
func parseAuthorization(header string) (sigV4Auth, bool) {
	var a sigV4Auth
	rest, ok := strings.CutPrefix(header, sigV4Algorithm+" ")
	if !ok {
		return a, false
	}
	var credential, signed, signature string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, false
		}
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			signature = v
		}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || signed == "" {
		return a, false
	}
	sig, err := hex.DecodeString(signature)
	if err != nil || len(sig) != sha256.Size {
		return a, false
	}
	a.accessKeyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	a.signedHeaders = strings.Split(signed, ";")
	a.signature = sig
	return a, true
}

// verifySignature checks the request's AWS Signature V4 (header form) against
// the configured keys. Any region and the service named in the scope are
// accepted: the key, not the scope, is what proves the caller. Host and
// X-Amz-Date must be signed so a signature cannot be moved to another server
// or replayed later.
func (s *Server) verifySignature(r *http.Request, body []byte) *apiError {
	header := r.Header.Get("Authorization")
	if header == "" {
		return newError(kindMissingAuthentication, "Request is missing Authentication Token.")
	}
	auth, ok := parseAuthorization(header)
	if !ok {
		return newError(kindSignatureDoesNotMatch, "The Authorization header is malformed.")
	}
	secret, ok := s.keys[auth.accessKeyID]
	if !ok {
		return newError(kindInvalidClientTokenID, "The security token included in the request is invalid.")
	}
	if !slices.Contains(auth.signedHeaders, "host") || !slices.Contains(auth.signedHeaders, "x-amz-date") {
		return newError(kindSignatureDoesNotMatch, "The request must sign the host and x-amz-date headers.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	when, err := time.Parse(amzDateLayout, amzDate)
	if err != nil || !strings.HasPrefix(amzDate, auth.date) {
		return newError(kindSignatureDoesNotMatch, "X-Amz-Date is missing, malformed or does not match the credential scope.")
	}
	if skew := s.now().Sub(when); skew > maxClockSkew || skew < -maxClockSkew {
		return newError(kindRequestExpired, "Signature expired: %s is more than 15 minutes away from the server time.", amzDate)
	}
	canonical := canonicalRequest(r, auth.signedHeaders, payloadHash(r, body))
	digest := sha256.Sum256([]byte(canonical))
	scope := auth.date + "/" + auth.region + "/" + auth.service + "/aws4_request"
	stringToSign := sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(digest[:])
	key := signingKey(secret, auth.date, auth.region, auth.service)
	want := hmacSHA256(key, []byte(stringToSign))
	if !hmac.Equal(want, auth.signature) {
		return newError(kindSignatureDoesNotMatch, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return nil
}

// payloadHash is the hex SHA-256 of the body, or the literal the client
// declared in X-Amz-Content-Sha256 when it opted out of payload signing.
func payloadHash(r *http.Request, body []byte) string {
	if declared := r.Header.Get("X-Amz-Content-Sha256"); declared == "UNSIGNED-PAYLOAD" {
		return declared
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// canonicalRequest builds the SigV4 canonical request from what arrived:
// method, URI path, sorted query, the signed headers' values (trimmed, inner
// runs of spaces collapsed, repeated headers joined by commas) and the
// payload hash.
func canonicalRequest(r *http.Request, signedHeaders []string, payload string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

// canonicalHeaderValue returns a signed header's canonical value. Go's
// server moves Host and Content-Length out of r.Header, so they are read
// from the request fields.
func canonicalHeaderValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return collapseSpaces(r.Host)
	case "content-length":
		if r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	}
	values := r.Header.Values(name)
	cleaned := make([]string, len(values))
	for i, v := range values {
		cleaned[i] = collapseSpaces(strings.TrimSpace(v))
	}
	return strings.Join(cleaned, ",")
}

func collapseSpaces(s string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// canonicalQuery sorts parameters by name then value, each URI-encoded as
// SigV4 requires (RFC 3986 unreserved characters kept, space as %20).
func canonicalQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	// Sorted on the escaped name, then value; sorting "name=value" strings
	// would put "a-b=1" before "a=1".
	pairs := make([][2]string, 0, len(q))
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, [2]string{sigV4Escape(k), sigV4Escape(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p[0])
		b.WriteByte('=')
		b.WriteString(p[1])
	}
	return b.String()
}

func sigV4Escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}

func hmacSHA256(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}
