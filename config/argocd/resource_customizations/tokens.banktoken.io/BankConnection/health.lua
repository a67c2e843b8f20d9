-- Argo CD health of a tokens.banktoken.io BankConnection or ClusterBankConnection (the two
-- kinds share their status, and this script), read from the conditions the operator writes:
-- CredentialsReady (the referenced Secrets hold what the client authentication needs) and
-- Ready (the connection can serve tokens: credentials ready, not paused).
--   Healthy      Ready=True for the current generation; refused requests are named in the
--                message but are the requests' failure, not the connection's.
--   Degraded     CredentialsReady=False, or Ready=False for another reason than a pause:
--                someone has to act.
--   Progressing  not reconciled yet, status written for an older generation, Ready=Unknown,
--                or paused by the bank (status.budget.pausedUntil): a 429 or Retry-After
--                pause ends by itself and the operator resumes without anyone acting, so it
--                is not shown as a failure that turns every Application using the connection
--                red. A pause that persists is the BankConnectionPaused alert's to report.
-- Argo CD runs this without the string library: only base, table and os functions here.
local hs = {}

local function findCondition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

local function describe(condition)
  if condition.message ~= nil and condition.message ~= "" then
    if condition.reason ~= nil and condition.reason ~= "" then
      return condition.reason .. ": " .. condition.message
    end
    return condition.message
  end
  return condition.reason or ""
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile"
  return hs
end

local generation = obj.metadata.generation or 0
local observedGeneration = obj.status.observedGeneration or 0

-- A condition speaks for the current spec when it was written for the current generation.
local function isCurrent(condition)
  return condition ~= nil and (condition.observedGeneration or observedGeneration) >= generation
end

local ready = findCondition(obj.status.conditions, "Ready")
local credentials = findCondition(obj.status.conditions, "CredentialsReady")
local pausedUntil = obj.status.budget ~= nil and obj.status.budget.pausedUntil or nil

if isCurrent(credentials) and credentials.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(credentials)
  return hs
end

if isCurrent(ready) and ready.status == "True" and observedGeneration >= generation then
  hs.status = "Healthy"
  hs.message = describe(ready)
  local refused = obj.status.refusedRequests or 0
  if refused > 0 then
    hs.message = hs.message .. "; " .. refused .. " request(s) refused: outside allowedNamespaces or allowedScopes"
  end
  return hs
end

if isCurrent(ready) and ready.status == "False" then
  if pausedUntil ~= nil then
    hs.status = "Progressing"
    hs.message = "Paused by the bank until " .. pausedUntil .. ": " .. describe(ready)
  else
    hs.status = "Degraded"
    hs.message = describe(ready)
  end
  return hs
end

hs.status = "Progressing"
if isCurrent(ready) and ready.status == "Unknown" then
  hs.message = describe(ready)
elseif observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
else
  hs.message = "Waiting for the operator to check the connection"
end
return hs
