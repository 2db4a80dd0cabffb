package tableau

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFlexDecoding(t *testing.T) {
	tests := []struct {
		in      string
		text    string
		build   string
		n       int
		nSet    bool
		nErr    bool
		b, bSet bool
		bErr    bool
	}{
		{in: `"12"`, text: "12", n: 12, nSet: true, bErr: true},
		{in: `12`, text: "12", n: 12, nSet: true, bErr: true},
		{in: `"true"`, text: "true", b: true, bSet: true, nErr: true},
		{in: `false`, text: "false", bSet: true, nErr: true},
		{in: `null`},
		{in: `""`},
		{in: `{"value":"2024.2.0","build":"20242"}`, text: "2024.2.0", build: "20242", nErr: true, bErr: true},
		{in: `["a","b"]`, text: "a\nb", nErr: true, bErr: true},
		{in: `"abc"`, text: "abc", nErr: true, bErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var ft flexText
			if err := json.Unmarshal([]byte(tt.in), &ft); err != nil || ft.Value != tt.text || ft.Build != tt.build {
				t.Errorf("flexText = %+v, %v; want %q %q", ft, err, tt.text, tt.build)
			}
			var fi flexInt
			err := json.Unmarshal([]byte(tt.in), &fi)
			if (err != nil) != tt.nErr || (err == nil && (fi.N != tt.n || fi.Set != tt.nSet)) {
				t.Errorf("flexInt = %+v, %v; want %d set=%v err=%v", fi, err, tt.n, tt.nSet, tt.nErr)
			}
			var fb flexBool
			err = json.Unmarshal([]byte(tt.in), &fb)
			if (err != nil) != tt.bErr || (err == nil && (fb.B != tt.b || fb.Set != tt.bSet)) {
				t.Errorf("flexBool = %+v, %v; want %v set=%v err=%v", fb, err, tt.b, tt.bSet, tt.bErr)
			}
		})
	}
	var ft flexText
	for _, bad := range []string{`{"value":`, `[1,`, `{"value":{"value":[}}`} {
		if err := ft.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("flexText accepted %s", bad)
		}
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
		out     string
	}{
		{in: `"2024-06-02T12:00:05Z"`, want: time.Date(2024, 6, 2, 12, 0, 5, 0, time.UTC), out: `"2024-06-02T12:00:05Z"`},
		{in: `"2024-06-02T14:00:05+02:00"`, want: time.Date(2024, 6, 2, 12, 0, 5, 0, time.UTC), out: `"2024-06-02T12:00:05Z"`},
		{in: `""`, out: `""`},
		{in: `null`, out: `""`},
		{in: `"yesterday"`, wantErr: true},
		{in: `{"value":`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var ts Timestamp
			err := json.Unmarshal([]byte(tt.in), &ts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !ts.Equal(tt.want) {
				t.Errorf("time = %v, want %v", ts.Time, tt.want)
			}
			out, err := json.Marshal(ts)
			if err != nil || string(out) != tt.out {
				t.Errorf("marshal = %s, %v; want %s", out, err, tt.out)
			}
		})
	}
}
