package server

import (
	"testing"
	"time"
)

func TestPublishReachesSubscriber(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws?topics=a,b")
	r := publish(t, s, "a", `{"x": 1, "a":[1.50,2]}`)
	if r.Seq != 1 || r.Recipients != 1 {
		t.Fatalf("reply = %+v, want seq 1 recipients 1", r)
	}
	got, err := c.ReadText(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"topic":"a","seq":1,"data":{"x": 1, "a":[1.50,2]}}`; got != want {
		t.Fatalf("delivery = %s, want %s", got, want)
	}
}
