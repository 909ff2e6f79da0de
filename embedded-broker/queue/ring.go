package queue

// ring is a growable FIFO deque. It backs the ready list, the FIFO group
// list, the retention order and the waiter list: all are pushed at the back
// and consumed at the front, and a slice that is re-sliced from the front
// would leak its head capacity forever under a steady flow.
type ring[T any] struct {
	buf        []T
	head, size int
}

func (r *ring[T]) len() int { return r.size }

func (r *ring[T]) push(v T) {
	if r.size == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
}

func (r *ring[T]) front() T { return r.buf[r.head] }

func (r *ring[T]) pop() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero // drop the reference for the GC
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return v
}

// at returns the i-th element from the front.
func (r *ring[T]) at(i int) T { return r.buf[(r.head+i)%len(r.buf)] }

func (r *ring[T]) grow() {
	n := 2 * len(r.buf)
	if n == 0 {
		n = 16
	}
	buf := make([]T, n)
	for i := 0; i < r.size; i++ {
		buf[i] = r.at(i)
	}
	r.buf, r.head = buf, 0
}
