package queue

// deadline is an entry of the deadline heap: at unix nanoseconds, message m
// should change state (a delay ends or a visibility timeout expires). Entries
// are never removed early: when m's state changes its tick moves on, and a
// popped entry whose tick differs is skipped (lazy deletion). That keeps
// ChangeVisibility and Delete O(1) instead of O(log n) heap fixes.
type deadline struct {
	at   int64
	m    *message
	tick uint32
}

// deadlineHeap is a binary min-heap on at. One heap per queue replaces a
// time.Timer per message: a waiting receiver sleeps until the top only.
type deadlineHeap []deadline

func (h *deadlineHeap) push(d deadline) {
	*h = append(*h, d)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if s[parent].at <= s[i].at {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

func (h *deadlineHeap) pop() deadline {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = deadline{}
	s = s[:last]
	i := 0
	for {
		left := 2*i + 1
		if left >= len(s) {
			break
		}
		child := left
		if right := left + 1; right < len(s) && s[right].at < s[left].at {
			child = right
		}
		if s[i].at <= s[child].at {
			break
		}
		s[i], s[child] = s[child], s[i]
		i = child
	}
	*h = s
	return top
}
