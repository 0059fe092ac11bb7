package check

import "sync/atomic"

// MsgTable remembers, for each message (topic index, seq 1..PerTopic), how
// many subscribers received it and the largest latency among them, which is
// the time until the last subscriber had it (every delivery of one message
// carries the same send time). Safe for concurrent use.
type MsgTable struct {
	perTopic int
	maxLat   []atomic.Int64 // [topic*perTopic + seq-1]
	count    []atomic.Int64
}

// NewMsgTable makes a table for topics × perTopic messages. perTopic <= 0
// gives a table that records nothing.
func NewMsgTable(topics, perTopic int) *MsgTable {
	if perTopic < 0 || topics <= 0 {
		perTopic = 0
	}
	n := topics * perTopic
	return &MsgTable{perTopic: perTopic, maxLat: make([]atomic.Int64, n), count: make([]atomic.Int64, n)}
}

// Observe records one delivery of (topic, seq) with latency latNs. Seqs
// beyond the table are ignored.
func (t *MsgTable) Observe(topic int, seq uint64, latNs int64) {
	if seq == 0 || seq > uint64(t.perTopic) {
		return
	}
	i := topic*t.perTopic + int(seq-1)
	if i >= len(t.count) {
		return
	}
	t.count[i].Add(1)
	for {
		old := t.maxLat[i].Load()
		if latNs <= old || t.maxLat[i].CompareAndSwap(old, latNs) {
			return
		}
	}
}

// Msgs is the exported, mergeable form of a MsgTable: per topic, per seq-1.
type Msgs struct {
	// MaxLatNs is the largest latency seen for each message, nanoseconds.
	MaxLatNs [][]int64 `json:"max_lat_ns,omitempty"`
	// Count is how many deliveries of each message were seen.
	Count [][]int64 `json:"count,omitempty"`
}

// Export copies the table out.
func (t *MsgTable) Export() Msgs {
	if t.perTopic == 0 {
		return Msgs{}
	}
	topics := len(t.count) / t.perTopic
	m := Msgs{MaxLatNs: make([][]int64, topics), Count: make([][]int64, topics)}
	for ti := 0; ti < topics; ti++ {
		m.MaxLatNs[ti] = make([]int64, t.perTopic)
		m.Count[ti] = make([]int64, t.perTopic)
		for s := 0; s < t.perTopic; s++ {
			m.MaxLatNs[ti][s] = t.maxLat[ti*t.perTopic+s].Load()
			m.Count[ti][s] = t.count[ti*t.perTopic+s].Load()
		}
	}
	return m
}

// Merge folds o into m: maxima of latencies, sums of counts. Shapes may
// differ; m grows to cover o.
func (m *Msgs) Merge(o Msgs) {
	for len(m.MaxLatNs) < len(o.MaxLatNs) {
		m.MaxLatNs = append(m.MaxLatNs, nil)
		m.Count = append(m.Count, nil)
	}
	for ti := range o.MaxLatNs {
		for len(m.MaxLatNs[ti]) < len(o.MaxLatNs[ti]) {
			m.MaxLatNs[ti] = append(m.MaxLatNs[ti], 0)
			m.Count[ti] = append(m.Count[ti], 0)
		}
		for s, v := range o.MaxLatNs[ti] {
			m.MaxLatNs[ti][s] = max(m.MaxLatNs[ti][s], v)
			m.Count[ti][s] += o.Count[ti][s]
		}
	}
}
