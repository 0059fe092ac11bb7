package protocol

// MaxTopicLen is the longest topic name in bytes.
const MaxTopicLen = 128

// ValidTopic reports whether s is 1 to 128 bytes of [A-Za-z0-9_.:-].
func ValidTopic(s string) bool {
	if len(s) == 0 || len(s) > MaxTopicLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !topicByte[s[i]] {
			return false
		}
	}
	return true
}

var topicByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "_.:-" {
		t[c] = true
	}
	return t
}()
