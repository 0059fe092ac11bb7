package server

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/wspush/wspush/internal/slowpolicy"
	"github.com/wspush/wspush/protocol"
)

// TopicPolicy is --topic-policy: the slow-consumer policy of the topics
// whose names match a glob, in place of --slow-policy (Config.Conn's
// SlowPolicy). It is a comma list of glob=policy entries, tried in order,
// the first match wins:
//
//	prices.*=conflate,chat.*=close
//
// A glob is made of topic-name bytes ([A-Za-z0-9_.:-]) and '*', which
// matches any run of bytes, none included: path.Match semantics, where '*'
// stops only at '/', which topic names never contain. A policy is conflate,
// close, drop-oldest or drop-newest. Globs match topic names only: a user's
// stream (@42) and the internal control stream always follow --slow-policy.
// The zero value has no entry. It is a flag.Value.
type TopicPolicy struct {
	rules []topicRule // in the order given; immutable once parsed
}

// topicRule is one glob=policy entry.
type topicRule struct {
	glob   string
	policy slowpolicy.Policy
}

// ParseTopicPolicy reads a --topic-policy value. Blanks around entries,
// globs and policies are ignored; an empty value has no entry. A malformed
// entry (no '=', an empty glob, a byte a topic name cannot have, a glob
// longer than any topic, a glob named twice, an unknown policy) is an
// ErrBadConfig naming it.
func ParseTopicPolicy(s string) (TopicPolicy, error) {
	var p TopicPolicy
	if strings.TrimSpace(s) == "" {
		return p, nil
	}
	for _, raw := range strings.Split(s, ",") {
		r, err := parseTopicRule(raw)
		if err != nil {
			return TopicPolicy{}, fmt.Errorf("%w: --topic-policy entry %q: %w", ErrBadConfig, strings.TrimSpace(raw), err)
		}
		for _, prev := range p.rules {
			if prev.glob == r.glob {
				return TopicPolicy{}, fmt.Errorf("%w: --topic-policy entry %q: glob %q is listed twice", ErrBadConfig, strings.TrimSpace(raw), r.glob)
			}
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// parseTopicRule reads one glob=policy entry.
func parseTopicRule(entry string) (topicRule, error) {
	glob, pol, ok := strings.Cut(entry, "=")
	if !ok {
		return topicRule{}, errors.New("want glob=policy")
	}
	glob = strings.TrimSpace(glob)
	if glob == "" {
		return topicRule{}, errors.New("empty glob")
	}
	literal := 0
	for i := 0; i < len(glob); i++ {
		if glob[i] == '*' {
			continue
		}
		if !protocol.ValidTopic(glob[i : i+1]) {
			return topicRule{}, fmt.Errorf("glob byte %q: a glob is topic-name bytes [A-Za-z0-9_.:-] and *", glob[i])
		}
		literal++
	}
	if literal > protocol.MaxTopicLen {
		return topicRule{}, fmt.Errorf("glob longer than any topic name (%d bytes)", protocol.MaxTopicLen)
	}
	p, err := slowpolicy.Parse(strings.TrimSpace(pol))
	if err != nil {
		return topicRule{}, err
	}
	return topicRule{glob: glob, policy: p}, nil
}

// Set implements flag.Value: p becomes s parsed (a flag or its WSPUSH_
// variable).
func (p *TopicPolicy) Set(s string) error {
	np, err := ParseTopicPolicy(s)
	if err != nil {
		return err
	}
	*p = np
	return nil
}

// String implements flag.Value: the entries as ParseTopicPolicy reads
// them, "" when there is none.
func (p *TopicPolicy) String() string {
	var b strings.Builder
	for i, r := range p.rules {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.glob)
		b.WriteByte('=')
		b.WriteString(r.policy.String())
	}
	return b.String()
}

// policy returns the policy the named topic gets: the first entry whose
// glob matches it, else slowpolicy.Default (--slow-policy), which is also
// what a name that is not a topic (a user's stream, the control stream)
// gets. The hub asks it once per topic it creates.
func (p *TopicPolicy) policy(topic string) slowpolicy.Policy {
	if len(p.rules) == 0 || !protocol.ValidTopic(topic) {
		return slowpolicy.Default
	}
	for _, r := range p.rules {
		// The glob is checked: path.Match cannot fail on it.
		if ok, _ := path.Match(r.glob, topic); ok {
			return r.policy
		}
	}
	return slowpolicy.Default
}
