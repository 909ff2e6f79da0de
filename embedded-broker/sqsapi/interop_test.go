package sqsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// Interop tests with independent SQS clients, installed by
// scripts/ensure.d/sqs-clients.sh:
//
//   - Debian's awscli 2.9 (/usr/bin/aws, query protocol): every
//     "aws ... sqs ..." command of README.md and docs/*.md, as written;
//   - Debian's python3-boto3 1.26 (/usr/bin/python3, query protocol):
//     testdata/interop/boto3_sqs.py, every action boto3 1.26 has;
//   - the AWS SDK for JavaScript v3 (@aws-sdk/client-sqs from npm, JSON 1.0):
//     testdata/interop/js_sqs.mjs.
//
// Each test runs against a server that requires SigV4 (so the clients'
// signing is checked too), logs the client's version and protocol, and
// asserts from the server's own request counts which protocol was used. A
// missing client fails the test; SQS_INTEROP_SKIP=1 (which scripts/test.sh
// never sets) skips instead.

const (
	interopKeyID  = "AKIDINTEROPTEST"
	interopSecret = "interop-secret-key"
)

// interopTool returns the path of an installed client: $envVar, else def.
func interopTool(t *testing.T, envVar, def string) string {
	t.Helper()
	path := os.Getenv(envVar)
	if path == "" {
		path = def
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("SQS_INTEROP_SKIP") == "1" {
			t.Skipf("%s not installed (SQS_INTEROP_SKIP=1)", path)
		}
		t.Fatalf("%s is not installed: run ./scripts/test.sh, which installs the SQS interop clients (scripts/ensure.d/sqs-clients.sh), or set SQS_INTEROP_SKIP=1 to skip: %v", path, err)
	}
	return path
}

// newSignedEnv is a test server that requires SigV4 by the interop key.
func newSignedEnv(t *testing.T) *testEnv {
	return newEnv(t, func(o *Options) {
		o.Credentials = []Credential{{AccessKeyID: interopKeyID, SecretAccessKey: interopSecret}}
	})
}

// clientEnv is the environment of a client process: what a user's shell
// would set for it (keys and region), a PATH, a HOME without AWS config
// files, and nothing else.
func clientEnv(t *testing.T, extra ...string) []string {
	return append([]string{
		"PATH=/usr/bin:/bin",
		"HOME=" + t.TempDir(),
		"AWS_ACCESS_KEY_ID=" + interopKeyID,
		"AWS_SECRET_ACCESS_KEY=" + interopSecret,
		"AWS_DEFAULT_REGION=eu-west-1",
	}, extra...)
}

// runClient runs a client command and returns its standard output.
func runClient(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("%s stderr: %s", filepath.Base(name), stderr.String())
	}
	return stdout.String(), err
}

// assertProtocol checks the server's request counts: only protocol was
// used, at least min times.
func assertProtocol(t *testing.T, s *Server, protocol string, min int64) {
	t.Helper()
	counts := s.Requests()
	other := ProtocolJSON
	if protocol == ProtocolJSON {
		other = ProtocolQuery
	}
	if counts[protocol] < min || counts[other] != 0 {
		t.Fatalf("server saw %v requests; want >= %d %s and no %s", counts, min, protocol, other)
	}
	t.Logf("server side: %d %s requests, %d %s", counts[protocol], protocol, counts[other], other)
}

func TestBoto3Interop(t *testing.T) {
	python := interopTool(t, "SQS_PYTHON", "/usr/bin/python3")
	e := newSignedEnv(t)
	out, err := runClient(t, clientEnv(t), python, filepath.Join("testdata", "interop", "boto3_sqs.py"), e.http.URL)
	t.Logf("boto3 script:\n%s", out)
	if err != nil {
		t.Fatalf("boto3 script failed: %v", err)
	}
	if !strings.Contains(out, "protocol query") || !strings.Contains(out, "\nok ") {
		t.Fatalf("the script did not report the query protocol and its checks:\n%s", out)
	}
	assertProtocol(t, e.server, ProtocolQuery, 50)
}

func TestJSSDKInterop(t *testing.T) {
	dir := os.Getenv("SQS_JS_DIR")
	if dir == "" {
		dir = filepath.Join(moduleRoot(t), ".tools", "sqs-js")
	}
	interopTool(t, "SQS_JS_SDK_PACKAGE", filepath.Join(dir, "node_modules", "@aws-sdk", "client-sqs", "package.json"))
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: %v", err)
	}
	e := newSignedEnv(t)
	out, err := runClient(t, clientEnv(t, "SQS_JS_DIR="+dir, "AWS_REGION=eu-west-1"), node,
		filepath.Join("testdata", "interop", "js_sqs.mjs"), e.http.URL)
	t.Logf("JS SDK script:\n%s", out)
	if err != nil {
		t.Fatalf("JS SDK script failed: %v", err)
	}
	if !strings.Contains(out, "\nok ") {
		t.Fatalf("the script did not report its checks:\n%s", out)
	}
	assertProtocol(t, e.server, ProtocolJSON, 10)
}

// TestAWSCLIDocsCommands runs every "aws ... sqs ..." command of README.md
// and docs/*.md with Debian's AWS CLI, as written but for the loopback
// endpoint's port, which becomes the test server's. A receive-message
// command finds a message with attributes waiting and must print it.
// Commands without a loopback --endpoint-url (real AWS) are listed, not run.
func TestAWSCLIDocsCommands(t *testing.T) {
	aws := interopTool(t, "SQS_AWS_CLI", "/usr/bin/aws")
	version, _ := runClient(t, clientEnv(t), aws, "--version")
	t.Logf("client: %s", strings.TrimSpace(version))
	e := newSignedEnv(t)
	commands := docCommands(t)
	if len(commands) == 0 {
		t.Fatal("no aws ... sqs ... command found in README.md and docs/*.md")
	}
	ran := 0
	sentTo := map[string][]string{} // queue URL -> bodies the docs' send-message commands sent
	for _, c := range commands {
		args, ok := localArgs(c.args, e.http.URL)
		if !ok {
			t.Logf("%s: not run (no loopback --endpoint-url): %s", c.file, strings.Join(c.args, " "))
			continue
		}
		ran++
		t.Logf("%s: %s", c.file, strings.Join(c.args, " "))
		body := seedForReceive(t, e, args)
		out, err := runClient(t, clientEnv(t), aws, args[1:]...)
		if err != nil {
			t.Fatalf("%s: aws %s failed: %v\n%s", c.file, strings.Join(args[1:], " "), err, out)
		}
		if slicesContains(args, "send-message") {
			u := argValue(args, "--queue-url")
			sentTo[u] = append(sentTo[u], argValue(args, "--message-body"))
		}
		checkCLIOutput(t, args, out, body, sentTo[argValue(args, "--queue-url")])
	}
	if ran == 0 {
		t.Fatal("no doc command has a loopback endpoint")
	}
	assertProtocol(t, e.server, ProtocolQuery, int64(ran))
}

type docCommand struct {
	file string
	args []string
}

// moduleRoot finds the directory of go.mod above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// inlineCode matches `code spans` on one line.
var inlineCode = regexp.MustCompile("`([^`]+)`")

// docCommands extracts the aws ... sqs ... commands of README.md and
// docs/*.md: lines of code blocks (with their "\" continuations) and inline
// code spans that start with "aws".
func docCommands(t *testing.T) []docCommand {
	t.Helper()
	root := moduleRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	var out []docCommand
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		for _, text := range commandTexts(string(data)) {
			args, err := shellWords(text)
			if err != nil {
				t.Fatalf("%s: cannot split %q: %v", rel, text, err)
			}
			if len(args) > 1 && args[0] == "aws" && slicesContains(args, "sqs") {
				out = append(out, docCommand{rel, args})
			}
		}
	}
	return out
}

func slicesContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// commandTexts returns the candidate command lines of a markdown text.
func commandTexts(md string) []string {
	var out []string
	inBlock := false
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
				i++
				line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
			}
			line = strings.TrimPrefix(line, "$ ")
			if strings.HasPrefix(line, "aws ") {
				out = append(out, line)
			}
			continue
		}
		for _, m := range inlineCode.FindAllStringSubmatch(line, -1) {
			if strings.HasPrefix(m[1], "aws ") {
				out = append(out, m[1])
			}
		}
	}
	return out
}

// shellWords splits a command line as a POSIX shell would for plain words,
// single and double quotes and backslash escapes; a comment ends it.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errUnterminated
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				cur.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, errUnterminated
			}
			i = j
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			i = len(s)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

var errUnterminated = errors.New("unterminated quote")

// loopbackURL matches a loopback endpoint of the docs.
var loopbackURL = regexp.MustCompile(`^http://(127\.0\.0\.1|localhost):[0-9]+`)

// localArgs points a doc command at endpoint. It reports false for a
// command without a loopback --endpoint-url.
func localArgs(args []string, endpoint string) ([]string, bool) {
	i := slicesIndex(args, "--endpoint-url")
	if i < 0 || i+1 >= len(args) || !loopbackURL.MatchString(args[i+1]) {
		return nil, false
	}
	out := make([]string, len(args))
	for j, a := range args {
		out[j] = loopbackURL.ReplaceAllString(a, endpoint)
	}
	return out, true
}

func slicesIndex(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// argValue returns the value of --name in args.
func argValue(args []string, name string) string {
	if i := slicesIndex(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// seedForReceive makes sure the queue of a command exists and, for a
// receive-message, holds a message with attributes; it returns that body.
func seedForReceive(t *testing.T, e *testEnv, args []string) string {
	t.Helper()
	u := argValue(args, "--queue-url")
	if u == "" {
		return ""
	}
	name := u[strings.LastIndexByte(u, '/')+1:]
	q, err := e.manager.Get(name)
	if err != nil {
		if q, err = e.manager.Create(defaultConfig(name)); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	if !slicesContains(args, "receive-message") {
		return ""
	}
	body := `{"type":"order.created","region":"eu","amount":120} <` + name + `>`
	_, err = q.Send(t.Context(), []queue.SendInput{{Body: []byte(body), Attributes: []queue.Attribute{
		{Name: "bridge-event-id", DataType: "String", Value: []byte("orders/0/7")},
		{Name: "bridge-key", DataType: "String", Value: []byte("o-1")},
	}}})
	if err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
	return body
}

// checkCLIOutput checks what the CLI printed: JSON, and for a
// receive-message one message, the seeded one (with its attributes when the
// command asked for them) or one that an earlier doc command sent.
func checkCLIOutput(t *testing.T, args []string, out, body string, sent []string) {
	t.Helper()
	if strings.TrimSpace(out) == "" {
		return // commands that answer nothing print nothing
	}
	var got struct {
		Messages []struct {
			Body              string
			MessageAttributes map[string]struct{ StringValue string }
		}
		QueueUrl string //nolint:revive // the CLI's field name
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("aws printed no JSON: %v\n%s", err, out)
	}
	if slicesContains(args, "create-queue") && !strings.Contains(got.QueueUrl, "/000000000000/"+argValue(args, "--queue-name")) {
		t.Fatalf("create-queue printed %q", out)
	}
	if body == "" {
		return
	}
	if len(got.Messages) < 1 || (got.Messages[0].Body != body && !slicesContains(sent, got.Messages[0].Body)) {
		t.Fatalf("receive-message printed %s; want the message %q or one of %q", out, body, sent)
	}
	if got.Messages[0].Body == body && argValue(args, "--message-attribute-names") == "All" &&
		got.Messages[0].MessageAttributes["bridge-key"].StringValue != "o-1" {
		t.Fatalf("receive-message --message-attribute-names All printed no attributes: %s", out)
	}
}
