package providers

import "github.com/google/uuid"

// HeaderFAPIInteractionID is the correlation id of a call to a FAPI server, spelled as FAPI
// 1.0 Part 1 §6.2.1 and the FAPI 2.0 profiles spell it: the client sends an RFC 4122 UUID,
// the server logs it and echoes it, so that both sides can name one call to each other.
const HeaderFAPIInteractionID = "x-fapi-interaction-id"

// NewInteractionID makes a fresh x-fapi-interaction-id: a random (version 4) RFC 4122 UUID,
// from github.com/google/uuid, which the module already uses for MsgId and assertion ids.
func NewInteractionID() string { return uuid.NewString() }
