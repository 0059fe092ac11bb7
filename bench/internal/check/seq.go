package check

// Verdict says how one observed seq relates to what came before.
type Verdict uint8

// Verdicts returned by Seq.Observe.
const (
	// InOrder is the next seq (Last+1).
	InOrder Verdict = iota
	// Gap skipped one or more seqs, which are now missing.
	Gap
	// OutOfOrder is a seq below Last that was missing until now.
	OutOfOrder
	// Duplicate is a seq that was already received.
	Duplicate
)

// MaxHoles bounds the ranges of missing seqs one Seq remembers. Past it the
// oldest range is forgotten (its size still counts as missing; a late
// arrival inside it is then counted as a duplicate, not out-of-order).
const MaxHoles = 1024

// span is an inclusive range of missing seqs.
type span struct{ lo, hi uint64 }

// Seq tracks one topic's seq numbers on one connection. Seqs start at 1,
// so the zero value expects seq 1 first. Not safe for concurrent use.
type Seq struct {
	// Last is the highest seq received so far.
	Last uint64
	// Received counts every Observe.
	Received uint64
	// Gaps counts Observe calls that skipped seqs.
	Gaps uint64
	// Dup counts seqs received more than once.
	Dup uint64
	// OOO counts seqs that arrived after a higher one (and filled a hole).
	OOO uint64

	holes     []span // sorted, disjoint, all below Last
	forgotten uint64 // missing seqs in holes dropped past MaxHoles
}

// Observe records one received seq and classifies it.
func (s *Seq) Observe(seq uint64) Verdict {
	s.Received++
	switch {
	case seq == s.Last+1:
		s.Last = seq
		return InOrder
	case seq > s.Last+1:
		s.addHole(span{s.Last + 1, seq - 1})
		s.Last = seq
		s.Gaps++
		return Gap
	}
	if seq > 0 && s.fill(seq) {
		s.OOO++
		return OutOfOrder
	}
	s.Dup++
	return Duplicate
}

func (s *Seq) addHole(h span) {
	if len(s.holes) >= MaxHoles {
		old := s.holes[0]
		s.forgotten += old.hi - old.lo + 1
		copy(s.holes, s.holes[1:])
		s.holes = s.holes[:len(s.holes)-1]
	}
	s.holes = append(s.holes, h)
}

// fill removes seq from the holes, reporting whether it was missing.
func (s *Seq) fill(seq uint64) bool {
	// Late arrivals are almost always in the newest hole: scan backwards.
	for i := len(s.holes) - 1; i >= 0; i-- {
		h := s.holes[i]
		if seq > h.hi {
			return false
		}
		if seq < h.lo {
			continue
		}
		switch {
		case h.lo == h.hi:
			s.holes = append(s.holes[:i], s.holes[i+1:]...)
		case seq == h.lo:
			s.holes[i].lo++
		case seq == h.hi:
			s.holes[i].hi--
		default:
			s.holes = append(s.holes, span{})
			copy(s.holes[i+2:], s.holes[i+1:])
			s.holes[i] = span{h.lo, seq - 1}
			s.holes[i+1] = span{seq + 1, h.hi}
			if len(s.holes) > MaxHoles {
				old := s.holes[0]
				s.forgotten += old.hi - old.lo + 1
				s.holes = append(s.holes[:0], s.holes[1:]...)
			}
		}
		return true
	}
	return false
}

// Missing returns how many seqs in 1..expectLast were never received: the
// holes below Last plus the tail Last+1..expectLast.
func (s *Seq) Missing(expectLast uint64) uint64 {
	n := s.forgotten
	for _, h := range s.holes {
		n += h.hi - h.lo + 1
	}
	if expectLast > s.Last {
		n += expectLast - s.Last
	}
	return n
}

// Counts is the sum of many Seqs' findings.
type Counts struct {
	// Received counts all deliveries observed.
	Received uint64 `json:"received"`
	// Missing counts seqs never received.
	Missing uint64 `json:"missing"`
	// Gaps counts deliveries that skipped seqs.
	Gaps uint64 `json:"gaps"`
	// Dup counts duplicate deliveries.
	Dup uint64 `json:"duplicates"`
	// OOO counts out-of-order deliveries.
	OOO uint64 `json:"out_of_order"`
}

// Add folds s, finalised against expectLast, into c.
func (c *Counts) Add(s *Seq, expectLast uint64) {
	c.Received += s.Received
	c.Missing += s.Missing(expectLast)
	c.Gaps += s.Gaps
	c.Dup += s.Dup
	c.OOO += s.OOO
}

// Merge adds o into c.
func (c *Counts) Merge(o Counts) {
	c.Received += o.Received
	c.Missing += o.Missing
	c.Gaps += o.Gaps
	c.Dup += o.Dup
	c.OOO += o.OOO
}
