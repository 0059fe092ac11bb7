package publish

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/wspush/wspush/bench/internal/check"
)

// Payload is the kind of data object a Client publishes.
type Payload string

// Payload kinds.
const (
	// PayloadPad is {"t":sentNs,"p":"xxx…"}, padded with 'x' to the size
	// (check.AppendData): cheap, and it compresses to almost nothing.
	PayloadPad Payload = "pad"
	// PayloadJSON is a market-data-like object of exactly the size
	// (AppendJSON): repeating keys and symbols, varying numbers, as real
	// feeds are; it compresses about as well as they do.
	PayloadJSON Payload = "json"
)

// ParsePayload checks a --payload value ("" is PayloadPad).
func ParsePayload(s string) (Payload, error) {
	switch Payload(s) {
	case "", PayloadPad:
		return PayloadPad, nil
	case PayloadJSON:
		return PayloadJSON, nil
	}
	return "", fmt.Errorf("--payload %q: want pad or json", s)
}

// appendData appends the data object of message i sent at sentNs.
func (k Payload) appendData(dst []byte, sentNs int64, size, i int) []byte {
	if k == PayloadJSON {
		return AppendJSON(dst, sentNs, size, i)
	}
	return check.AppendData(dst, sentNs, size)
}

// symbols are the tickers AppendJSON quotes; each has a base price.
var symbols = [...]string{
	"AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "TSLA", "BRK.B", "JPM", "V",
	"UNH", "XOM", "JNJ", "WMT", "MA", "PG", "HD", "CVX", "MRK", "ABBV",
	"KO", "PEP", "AVGO", "COST", "ADBE", "CSCO", "CRM", "ACN", "NFLX", "AMD",
	"INTC", "ORCL",
}

// words fill the last field of an AppendJSON object up to its size.
var words = [...]string{
	"market", "open", "close", "halt", "resume", "auction", "session", "regular",
	"pre", "post", "indicative", "imbalance", "buy", "sell", "limit", "update",
}

// jsonEnd closes an AppendJSON object: the items array, then the note
// that brings the object to its size.
const jsonEnd = `],"note":""}`

// AppendJSON appends the data object of message i, sent at sentNs, as a
// market-data batch of exactly size bytes (when size leaves room for its
// fixed fields, about 90 bytes; a smaller size gives those alone):
//
//	{"t":…,"type":"quotes","venue":"XNAS","batch":i,"items":[{"sym":"AAPL","bid":187.23,"ask":187.25,"last":187.24,"size":300,"vol":1234567,"chg":-0.42,"ts":1764000000123},…],"note":"market open …"}
//
// The items repeat their keys and draw symbols from a short list, and
// their numbers vary, as a real feed's do; "note" is filled with words to
// the exact size. Everything but "t" depends on i alone, so message i is
// the same in every run. "t" comes first, where check.SentTime looks.
func AppendJSON(dst []byte, sentNs int64, size, i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 0x9e3779b97f4a7c15))
	start := len(dst)
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, sentNs, 10)
	dst = append(dst, `,"type":"quotes","venue":"XNAS","batch":`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `,"items":[`...)
	var item [160]byte
	ts := int64(1764000000000) + int64(i)*250
	for n := 0; ; n++ {
		it := appendQuote(item[:0], r, ts+int64(n)*3)
		sep := 0
		if n > 0 {
			sep = 1
		}
		if len(dst)-start+sep+len(it)+len(jsonEnd) > size {
			break
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it...)
	}
	dst = append(dst, jsonEnd[:len(jsonEnd)-2]...)
	for fill := size - (len(dst) - start) - 2; fill > 0; {
		w := words[r.IntN(len(words))]
		if fill <= len(w) {
			dst = append(dst, w[:fill]...)
			break
		}
		dst = append(dst, w...)
		dst = append(dst, ' ')
		fill -= len(w) + 1
	}
	return append(dst, `"}`...)
}

// appendQuote appends one item of an AppendJSON batch.
func appendQuote(dst []byte, r *rand.Rand, ts int64) []byte {
	k := r.IntN(len(symbols))
	base := 20 + float64(k)*13.37
	bid := base * (1 + (r.Float64()-0.5)*0.02)
	ask := bid + 0.01*float64(1+r.IntN(5))
	dst = append(dst, `{"sym":"`...)
	dst = append(dst, symbols[k]...)
	dst = append(dst, `","bid":`...)
	dst = strconv.AppendFloat(dst, bid, 'f', 2, 64)
	dst = append(dst, `,"ask":`...)
	dst = strconv.AppendFloat(dst, ask, 'f', 2, 64)
	dst = append(dst, `,"last":`...)
	dst = strconv.AppendFloat(dst, bid+(ask-bid)*r.Float64(), 'f', 2, 64)
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, int64(100*(1+r.IntN(20))), 10)
	dst = append(dst, `,"vol":`...)
	dst = strconv.AppendInt(dst, int64(r.IntN(50_000_000)), 10)
	dst = append(dst, `,"chg":`...)
	dst = strconv.AppendFloat(dst, (r.Float64()-0.5)*base*0.04, 'f', 2, 64)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '}')
}
