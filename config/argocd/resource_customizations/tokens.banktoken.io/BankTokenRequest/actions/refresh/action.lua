-- Asks the operator for a new token now, by setting tokens.banktoken.io/refresh-requested-at to
-- the current time (UTC, RFC 3339). The operator acts once per new value and records the value
-- it acted on in status.lastRefreshRequestedAt; the token in the Secret is replaced only when
-- the bank issues a new one.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["tokens.banktoken.io/refresh-requested-at"] = os.date("!%Y-%m-%dT%XZ")
return obj
