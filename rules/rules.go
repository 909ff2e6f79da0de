package rules

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Kind is what a rule must yield.
type Kind int

const (
	// Bool rules: filter, when, retry_if, dead_letter_if.
	Bool Kind = iota
	// String rules: key, routing_key, group_id, dedup_id, a transform's key
	// and header values.
	String
	// Value rules: a transform's value. Any result that has a JSON form
	// (maps, arrays, strings, numbers, booleans, times, bytes) or nil.
	Value
	// List rules: a transform's split. The result must be an array.
	List
	// Int rules: a queue target's priority. The result must be an integer
	// (an integral number).
	Int
	// Duration rules: a queue target's ttl and delay. The result is a
	// duration (duration("5m")), a number of seconds, or a string Go
	// parses as a duration ("90s").
	Duration
)

func (k Kind) String() string {
	switch k {
	case Bool:
		return "bool"
	case String:
		return "string"
	case Value:
		return "value"
	case List:
		return "array"
	case Int:
		return "integer"
	case Duration:
		return "duration"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Scope says which names a rule sees beyond the event environment.
type Scope int

const (
	// EventScope is the environment of SPEC §4 (filter, when, key, ...).
	EventScope Scope = iota
	// SplitScope adds item and index: the steps of a transform that splits
	// (drop_if, value, key, headers) run once per element of the split.
	SplitScope
)

// eventEnv is the environment of SPEC §4, used only to type-check rules.
// The field tags are the names rules use.
type eventEnv struct {
	Body      any               `expr:"body"`
	Value     string            `expr:"value"`
	Key       string            `expr:"key"`
	Headers   map[string]string `expr:"headers"`
	Topic     string            `expr:"topic"`
	Partition int               `expr:"partition"`
	Offset    int               `expr:"offset"`
	Timestamp time.Time         `expr:"timestamp"`
	Source    string            `expr:"source"`
}

// splitEnv is eventEnv plus the element of a split and its index.
type splitEnv struct {
	Body      any               `expr:"body"`
	Value     string            `expr:"value"`
	Key       string            `expr:"key"`
	Headers   map[string]string `expr:"headers"`
	Topic     string            `expr:"topic"`
	Partition int               `expr:"partition"`
	Offset    int               `expr:"offset"`
	Timestamp time.Time         `expr:"timestamp"`
	Source    string            `expr:"source"`
	Item      any               `expr:"item"`
	Index     int               `expr:"index"`
}

// failureEnv is eventEnv plus `error`, for retry_if and dead_letter_if.
type failureEnv struct {
	Body      any               `expr:"body"`
	Value     string            `expr:"value"`
	Key       string            `expr:"key"`
	Headers   map[string]string `expr:"headers"`
	Topic     string            `expr:"topic"`
	Partition int               `expr:"partition"`
	Offset    int               `expr:"offset"`
	Timestamp time.Time         `expr:"timestamp"`
	Source    string            `expr:"source"`
	Error     errorFields       `expr:"error"`
}

// errorFields is the value of `error` in failure rules.
type errorFields struct {
	Message   string `expr:"message"`
	Permanent bool   `expr:"permanent"`
	Attempts  int    `expr:"attempts"`
	Class     string `expr:"class"`
	Route     string `expr:"route"`
	Target    string `expr:"target"`
}

var (
	eventNames   = []string{"body", "value", "key", "headers", "topic", "partition", "offset", "timestamp", "source"}
	failureNames = append(append([]string(nil), eventNames...), "error")
	splitNames   = append(append([]string(nil), eventNames...), "item", "index")
	errorNames   = []string{"message", "permanent", "attempts", "class", "route", "target"}
)

// CompileError is a rule that does not compile. Line and Column are 1-based
// within the rule's source, so a loader can add them to the rule's own
// position in its file.
type CompileError struct {
	Line, Column int
	Msg          string
	Suggestion   string // a close known name, or ""
}

func (e *CompileError) Error() string {
	if e.Suggestion == "" {
		return e.Msg
	}
	return e.Msg + " (did you mean " + e.Suggestion + "?)"
}

// Program is a compiled rule. It is immutable and safe for concurrent use;
// evaluation state lives in Env.
type Program struct {
	src      string
	kind     Kind
	prog     *vm.Program
	paths    pathSet // body.a.b paths read statically, each a slot
	fullBody bool    // body used as a whole (body[x], len(body), ...)
	// patch, when set, computes a Value rule of the form
	// merge(omit(body, ...), {...}) without decoding the body (patch.go).
	patch *patchPlan
	// uuidBase numbers the uuid() call sites of this program; a program
	// compiled from part of a rule starts after the rule's own sites.
	uuidBase, uuidSites int
}

// Source returns the rule's text.
func (p *Program) Source() string { return p.src }

// Kind returns what the rule yields.
func (p *Program) Kind() Kind { return p.kind }

// UsesBody reports whether evaluating the rule reads the JSON body.
func (p *Program) UsesBody() bool { return p.fullBody || len(p.paths.paths) > 0 }

// Compile compiles an event rule once, type-checking it against the event
// environment (see the package doc).
func Compile(src string, kind Kind) (*Program, error) {
	return CompileIn(src, kind, EventScope)
}

// CompileIn compiles a rule that sees the names of scope: Compile is
// CompileIn(src, kind, EventScope).
func CompileIn(src string, kind Kind, scope Scope) (*Program, error) {
	if scope == SplitScope {
		return compile(src, kind, splitEnv{}, splitNames, names{split: true}, 0)
	}
	return compile(src, kind, eventEnv{}, eventNames, names{}, 0)
}

// CompileErrorRule compiles a Bool rule over the failure environment: the
// event environment plus `error` (see the package doc).
func CompileErrorRule(src string) (*Program, error) {
	return compile(src, Bool, failureEnv{}, failureNames, names{failure: true}, 0)
}

// names says which extra environment names a rule may use.
type names struct {
	failure, split bool
	noPatch        bool // compile a Value rule without the patch path
}

func compile(src string, kind Kind, proto any, known []string, extra names, uuidBase int) (*Program, error) {
	if kind < Bool || kind > Duration {
		return nil, fmt.Errorf("rules: unknown kind %d", int(kind))
	}
	if strings.TrimSpace(src) == "" {
		return nil, &CompileError{Line: 1, Column: 1, Msg: "empty rule"}
	}
	// Pass 1: expr's own type checker against the documented environment
	// and the helpers' signatures, so error messages and positions are
	// expr's.
	opts := append([]expr.Option{expr.Env(proto)}, helperDecls...)
	if kind == Bool {
		opts = append(opts, expr.AsBool())
	}
	checked, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, compileError(err, known)
	}
	if err := checkKind(kind, checked.Node()); err != nil {
		return nil, err
	}

	// Pass 2: rewrite the tree so every environment name becomes a call
	// into the Env, which computes values lazily; then compile that.
	tree, err := parser.ParseWithConfig(src, runtimeConfig())
	if err != nil {
		return nil, compileError(err, known)
	}
	p := &Program{src: src, kind: kind, uuidBase: uuidBase}
	if kind == Value && !extra.noPatch {
		// The patch plan compiles parts of a fresh parse: the tree below
		// is rewritten in place.
		if p.patch, err = planPatch(src, extra, uuidBase); err != nil {
			return nil, err
		}
	}
	if err := p.compileTree(tree, extra, known); err != nil {
		return nil, err
	}
	return p, nil
}

// compileTree rewrites tree's environment names into Env calls, checks and
// compiles it into p.prog. Its uuid() sites are numbered from p.uuidBase in
// the walk's order (children before parents, arguments left to right).
func (p *Program) compileTree(tree *parser.Tree, extra names, known []string) error {
	src := tree.Source.String()
	r := rewriter{p: p, chains: map[*ast.MemberNode][]string{}, inner: map[ast.Node]bool{}, extra: extra, src: src,
		uuidNext: p.uuidBase}
	ast.Walk(&tree.Node, &chainCollector{r: &r})
	if r.err != nil {
		return r.err
	}
	ast.Walk(&tree.Node, &r)
	p.uuidSites = r.uuidNext - p.uuidBase
	cfg := runtimeConfig()
	if _, err := checker.Check(tree, cfg); err != nil {
		return fmt.Errorf("rules: internal: rewritten rule %q does not check: %w", p.src, err)
	}
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		return compileError(err, known)
	}
	prog, err := compiler.Compile(tree, cfg)
	if err != nil {
		return fmt.Errorf("rules: internal: compile %q: %w", p.src, err)
	}
	p.prog = prog
	return nil
}

// checkKind rejects, at load time, a Value or List rule whose type expr
// knows statically and which cannot be what the rule must yield. A rule
// whose type is only known at run time (body.items) is checked then.
func checkKind(kind Kind, n ast.Node) error {
	t := n.Type()
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	switch kind {
	case List:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return &CompileError{Line: 1, Column: 1, Msg: "expected array, but got " + t.String()}
		}
	case Value:
		switch t.Kind() {
		case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
			return &CompileError{Line: 1, Column: 1, Msg: t.String() + " has no JSON form"}
		}
	case Int:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		default:
			return &CompileError{Line: 1, Column: 1, Msg: "expected integer, but got " + t.String() + " (convert with int())"}
		}
	case Duration:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64, reflect.String:
			// time.Duration is an int64 kind; numbers are seconds, strings Go durations.
		default:
			return &CompileError{Line: 1, Column: 1, Msg: "expected duration, number of seconds or duration string, but got " + t.String()}
		}
	}
	return nil
}

// compileError converts expr's error into a *CompileError with a suggestion.
func compileError(err error, names []string) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &CompileError{Line: 1, Column: 1, Msg: err.Error()}
	}
	ce := &CompileError{Line: fe.Line, Column: fe.Column + 1, Msg: fe.Message}
	if ce.Line == 0 {
		ce.Line, ce.Column = 1, 1
	}
	switch {
	case strings.HasPrefix(fe.Message, "unknown name "):
		bad := strings.TrimPrefix(fe.Message, "unknown name ")
		ce.Suggestion = closest(bad, names, helperNames, builtin.Names)
		if (bad == "item" || bad == "index") && !slices.Contains(names, "item") {
			ce.Msg += " (item and index exist in a transform with split)"
		}
	case strings.Contains(fe.Message, "rules.errorFields has no field "):
		_, bad, _ := strings.Cut(fe.Message, " has no field ")
		ce.Msg = "error has no field " + bad
		ce.Suggestion = closest(bad, errorNames)
	}
	return ce
}

// closest returns the candidate nearest to bad by edit distance, if it is
// close enough to be a likely typo.
func closest(bad string, lists ...[]string) string {
	best, bestD := "", 0
	limit := 2
	if len(bad) <= 3 {
		limit = 1
	}
	for _, list := range lists {
		for _, c := range list {
			d := editDistance(bad, c)
			if d <= limit && (best == "" || d < bestD) {
				best, bestD = c, d
			}
		}
	}
	return best
}

// editDistance is the Levenshtein distance, with a transposition counted
// as one edit (optimal string alignment).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// chainCollector finds member chains rooted at body with constant keys
// (body.a.b, body["a"].b). ast.Walk visits children first, so the inner
// links of a chain are known when the outer one is visited.
type chainCollector struct{ r *rewriter }

func (c *chainCollector) Visit(node *ast.Node) {
	r := c.r
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if n.Value == "$env" && r.err == nil {
			r.err = posError(r.src, n, "$env is not available in rules")
		}
	case *ast.MemberNode:
		prop, ok := n.Property.(*ast.StringNode)
		if !ok || n.Method {
			return
		}
		switch inner := n.Node.(type) {
		case *ast.IdentifierNode:
			if inner.Value == "body" {
				r.chains[n] = []string{prop.Value}
				r.inner[inner] = true
			}
		case *ast.MemberNode:
			if path, ok := r.chains[inner]; ok {
				r.chains[n] = append(append([]string(nil), path...), prop.Value)
				r.inner[inner] = true
			}
		}
	}
}

func posError(src string, n ast.Node, msg string) error {
	e := &CompileError{Line: 1, Column: 1, Msg: msg}
	from := n.Location().From
	for i, c := range []rune(src) {
		if i == from {
			break
		}
		if c == '\n' {
			e.Line++
			e.Column = 1
		} else {
			e.Column++
		}
	}
	return e
}

func isEnvName(s string, extra names) bool {
	for _, n := range eventNames {
		if n == s {
			return true
		}
	}
	return (extra.failure && s == "error") || (extra.split && (s == "item" || s == "index"))
}

// rewriter replaces environment names by calls into the Env:
// body.a.b → $path($env, slot), body → $body($env), topic → $topic($env),
// and the helpers that depend on the event: now() → $now($env),
// uuid() → $uuid($env, site).
type rewriter struct {
	p        *Program
	chains   map[*ast.MemberNode][]string
	inner    map[ast.Node]bool // chain links below the outermost one
	extra    names
	src      string
	err      error
	uuidNext int
}

func (r *rewriter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		callee, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || len(n.Arguments) != 0 {
			return
		}
		switch callee.Value {
		case "now":
			ast.Patch(node, envCall("$now"))
		case "uuid":
			ast.Patch(node, envCall("$uuid", &ast.IntegerNode{Value: r.uuidNext}))
			r.uuidNext++
		}
	case *ast.MemberNode:
		path, ok := r.chains[n]
		if !ok || r.inner[n] {
			return
		}
		slot := r.p.paths.add(path)
		ast.Patch(node, envCall("$path", &ast.IntegerNode{Value: slot}))
	case *ast.IdentifierNode:
		if r.inner[n] || !isEnvName(n.Value, r.extra) {
			return
		}
		if n.Value == "body" {
			r.p.fullBody = true
		}
		ast.Patch(node, envCall("$"+n.Value))
	}
}

func envCall(fn string, args ...ast.Node) *ast.CallNode {
	return &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: fn},
		Arguments: append([]ast.Node{&ast.IdentifierNode{Value: "$env"}}, args...),
	}
}

// runtimeConfig declares the functions the rewriter calls, with their
// result types so the compiler can still pick typed instructions.
func runtimeConfig() *conf.Config {
	cfg := conf.CreateNew()
	for _, op := range []expr.Option{
		expr.Function("$path", fnPath, new(func(any, int) any)),
		expr.Function("$body", fnBody, new(func(any) any)),
		expr.Function("$value", fnValue, new(func(any) string)),
		expr.Function("$key", fnKey, new(func(any) string)),
		expr.Function("$headers", fnHeaders, new(func(any) map[string]string)),
		expr.Function("$topic", fnTopic, new(func(any) string)),
		expr.Function("$partition", fnPartition, new(func(any) int)),
		expr.Function("$offset", fnOffset, new(func(any) int)),
		expr.Function("$timestamp", fnTimestamp, new(func(any) time.Time)),
		expr.Function("$source", fnSource, new(func(any) string)),
		expr.Function("$error", fnError, new(func(any) errorFields)),
		expr.Function("$item", fnItem, new(func(any) any)),
		expr.Function("$index", fnIndex, new(func(any) int)),
		expr.Function("$now", fnNow, new(func(any) time.Time)),
		expr.Function("$uuid", fnUUID, new(func(any, int) string)),
	} {
		op(cfg)
	}
	for _, op := range helperDecls {
		op(cfg)
	}
	cfg.Check()
	return cfg
}
