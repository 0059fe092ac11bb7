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

// UserPrefix starts the name of a user's stream: the stream of user "42" is
// "@42". Topic names never contain it, so a stream name is either a topic
// or a user's, never both.
const UserPrefix = "@"

// MaxUserLen is the longest user id in bytes (its stream name is one more).
const MaxUserLen = MaxTopicLen - 1

// ValidUser reports whether s is a user id: 1 to 127 bytes of
// [A-Za-z0-9_.:@-] (a topic name's bytes and '@', so an e-mail address
// without '+' is one). Such an id needs no escaping in JSON or in a query.
func ValidUser(s string) bool {
	if len(s) == 0 || len(s) > MaxUserLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !topicByte[s[i]] && s[i] != '@' {
			return false
		}
	}
	return true
}

// UserStream returns the stream name of user id: "@" + id.
func UserStream(id string) string { return UserPrefix + id }

// UserOf returns the user id of a user's stream name, and false for a
// topic name.
func UserOf(stream string) (string, bool) {
	if len(stream) > 1 && stream[0] == UserPrefix[0] {
		return stream[1:], true
	}
	return "", false
}

// validStream reports whether s is a topic name or a user's stream name.
func validStream(s string) bool {
	if id, ok := UserOf(s); ok {
		return ValidUser(id)
	}
	return ValidTopic(s)
}
