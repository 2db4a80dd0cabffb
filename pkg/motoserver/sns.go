package motoserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// SNSMessage is one message moto recorded as published to a topic.
type SNSMessage struct {
	Message    string
	Subject    string
	Attributes map[string]any // as moto stores them
	GroupID    string
}

// SNSMessages returns what was published to topicARN, read from moto's
// model dump (GET /moto-api/data.json), where each SNS topic lists its
// sent_notifications as [id, message, subject, attributes, group id]. It is
// how a test sees a notification arrive without subscribing a queue.
func (s *Server) SNSMessages(ctx context.Context, topicARN string) ([]SNSMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/moto-api/data.json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("moto data.json: %w", err)
	}
	defer resp.Body.Close()
	var data struct {
		SNS struct {
			Topic []struct {
				ARN               string  `json:"arn"`
				SentNotifications [][]any `json:"sent_notifications"`
			} `json:"Topic"`
		} `json:"sns"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&data); err != nil {
		return nil, fmt.Errorf("decode moto data.json: %w", err)
	}
	var out []SNSMessage
	for _, topic := range data.SNS.Topic {
		if topic.ARN != topicARN {
			continue
		}
		for _, n := range topic.SentNotifications {
			if len(n) < 5 {
				return nil, fmt.Errorf("moto notification has %d fields, want 5: %v", len(n), n)
			}
			m := SNSMessage{}
			m.Message, _ = n[1].(string)
			m.Subject, _ = n[2].(string)
			m.Attributes, _ = n[3].(map[string]any)
			m.GroupID, _ = n[4].(string)
			out = append(out, m)
		}
	}
	return out, nil
}
