package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

var _ tableau.SessionStore = (*Table)(nil)

const (
	sessionPrefix = "TABLEAU#SESSION#"
	sessionSK     = "SESSION"
	lockSK        = "LOCK"

	attrToken      = "token"
	attrSiteID     = "site_id"
	attrUserID     = "user_id"
	attrCreatedAt  = "created_at"
	attrLeaseUntil = "lease_until" // epoch milliseconds
	// A stored session is useless long before this; the TTL only tidies up.
	sessionRetention = 24 * time.Hour
)

// Load implements tableau.SessionStore. The read is strongly consistent so
// that an instance sees the session another just saved.
func (t *Table) Load(ctx context.Context, k string) (*tableau.Session, error) {
	out, err := t.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.name), Key: key(sessionPrefix+k, sessionSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("load shared Tableau session: %w", err)
	}
	if out.Item == nil || getS(out.Item, attrToken) == "" {
		return nil, nil
	}
	created, _ := time.Parse(time.RFC3339Nano, getS(out.Item, attrCreatedAt))
	return &tableau.Session{
		Token:     getS(out.Item, attrToken),
		SiteID:    getS(out.Item, attrSiteID),
		UserID:    getS(out.Item, attrUserID),
		CreatedAt: created,
	}, nil
}

// Save implements tableau.SessionStore. The token is a credential: the table
// is encrypted at rest and only the functions' roles can read it.
func (t *Table) Save(ctx context.Context, k string, sess *tableau.Session) error {
	item := key(sessionPrefix+k, sessionSK)
	if sess != nil {
		item[attrToken] = s(sess.Token)
		item[attrSiteID] = s(sess.SiteID)
		item[attrUserID] = s(sess.UserID)
		item[attrCreatedAt] = s(sess.CreatedAt.UTC().Format(time.RFC3339Nano))
	}
	item[attrExpiresAt] = n(t.now().Add(sessionRetention).Unix())
	if _, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.name), Item: item}); err != nil {
		return fmt.Errorf("save shared Tableau session: %w", err)
	}
	return nil
}

// TryLock implements tableau.SessionStore with a conditional write: the
// lease is free, lapsed, or already ours.
func (t *Table) TryLock(ctx context.Context, k, owner string, ttl time.Duration) (bool, error) {
	now := t.now()
	item := key(sessionPrefix+k, lockSK)
	item[attrOwner] = s(owner)
	item[attrLeaseUntil] = n(now.Add(ttl).UnixMilli())
	item[attrExpiresAt] = n(now.Add(ttl).Add(time.Hour).Unix())
	_, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(t.name),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #lease <= :nowms OR #owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#lease": attrLeaseUntil, "#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":nowms": n(now.UnixMilli()), ":owner": s(owner)},
	})
	if _, failed := conditionFailed(err); failed {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take Tableau sign-in lease: %w", err)
	}
	return true, nil
}

// Unlock implements tableau.SessionStore.
func (t *Table) Unlock(ctx context.Context, k, owner string) error {
	_, err := t.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(t.name),
		Key:                       key(sessionPrefix+k, lockSK),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": s(owner)},
	})
	if _, failed := conditionFailed(err); failed {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release Tableau sign-in lease: %w", err)
	}
	return nil
}
