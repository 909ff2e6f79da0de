package exchange

import "strings"

// node is one word position of the topic trie. A binding pattern is a path
// from the root; its queues sit on the node where the path ends.
type node struct {
	words  map[string]*node // literal next words
	star   *node            // "*"
	hash   *node            // "#"
	queues []string         // sorted, each once: patterns ending here
}

func newNode() *node { return &node{} }

// patternWords splits a binding key into words. The empty key has zero
// words, like the empty routing key. Runs of "#" collapse into one: "#.#"
// matches exactly what "#" matches, and one "#" per run keeps matching from
// trying every split of the key between the two.
func patternWords(key string) []string {
	if key == "" {
		return nil
	}
	words := strings.Split(key, ".")
	out := words[:0]
	for _, w := range words {
		if w == "#" && len(out) > 0 && out[len(out)-1] == "#" {
			continue
		}
		out = append(out, w)
	}
	return out
}

func (n *node) child(w string, create bool) *node {
	switch w {
	case "*":
		if n.star == nil && create {
			n.star = newNode()
		}
		return n.star
	case "#":
		if n.hash == nil && create {
			n.hash = newNode()
		}
		return n.hash
	}
	c := n.words[w]
	if c == nil && create {
		if n.words == nil {
			n.words = make(map[string]*node)
		}
		c = newNode()
		n.words[w] = c
	}
	return c
}

func (n *node) add(words []string, queue string) {
	for _, w := range words {
		n = n.child(w, true)
	}
	n.queues = insertSorted(n.queues, queue)
}

// remove drops queue from the pattern's node and prunes nodes left empty,
// so unbinding gives the memory back.
func (n *node) remove(words []string, queue string) {
	if len(words) == 0 {
		n.queues = removeSorted(n.queues, queue)
		return
	}
	c := n.child(words[0], false)
	if c == nil {
		return
	}
	c.remove(words[1:], queue)
	if !c.empty() {
		return
	}
	switch words[0] {
	case "*":
		n.star = nil
	case "#":
		n.hash = nil
	default:
		delete(n.words, words[0])
	}
}

func (n *node) empty() bool {
	return len(n.queues) == 0 && len(n.words) == 0 && n.star == nil && n.hash == nil
}

// match appends the queues of every pattern below n that matches the rest
// of key. pos is the byte offset where the next word starts, or len(key)+1
// once every word has been consumed; walking offsets instead of splitting
// keeps Route free of allocations.
func (n *node) match(key string, pos int, dst []string) []string {
	if n.hash != nil {
		// "#" takes zero words, then one, then two... up to all of them.
		for p := pos; ; p = nextWord(key, p) {
			dst = n.hash.match(key, p, dst)
			if p > len(key) {
				break
			}
		}
	}
	if pos > len(key) {
		return append(dst, n.queues...)
	}
	end := nextWord(key, pos)
	if n.words != nil {
		if c := n.words[key[pos:end-1]]; c != nil {
			dst = c.match(key, end, dst)
		}
	}
	if n.star != nil {
		dst = n.star.match(key, end, dst)
	}
	return dst
}

// nextWord returns where the word after the one starting at pos begins, or
// len(key)+1 when that word is the last. The word itself is
// key[pos:nextWord(key, pos)-1].
func nextWord(key string, pos int) int {
	if i := strings.IndexByte(key[pos:], '.'); i >= 0 {
		return pos + i + 1
	}
	return len(key) + 1
}
