package sharding

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"time"
)

// Messages of the manager's log this test reads (internal/controller: act.go, shard.go).
const (
	msgTokenCall = "obtaining a token"
	msgLetGo     = "drained from this shard: letting go"
)

// logEntry is one line of the manager's JSON log, as far as this test reads it: the
// reconcile's logger names the request.
type logEntry struct {
	TS   time.Time `json:"ts"` // --zap-time-encoding=rfc3339nano
	Msg  string    `json:"msg"`
	Name string    `json:"name"`
}

// entriesOf reads the log at path and returns, per request name, when each line with
// message msg was logged.
func entriesOf(path, msg string) (map[string][]time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]time.Time{}
	lines := bufio.NewScanner(f)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	for lines.Scan() {
		var e logEntry
		if json.Unmarshal(lines.Bytes(), &e) != nil || e.Msg != msg {
			continue
		}
		out[e.Name] = append(out[e.Name], e.TS)
	}
	return out, lines.Err()
}

// latest and earliest of a non-empty list of times.
func latest(ts []time.Time) time.Time {
	return slices.MaxFunc(ts, time.Time.Compare)
}

func earliest(ts []time.Time) time.Time {
	return slices.MinFunc(ts, time.Time.Compare)
}
