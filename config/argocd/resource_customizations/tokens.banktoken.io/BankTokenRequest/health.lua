-- Argo CD health of a tokens.banktoken.io BankTokenRequest, read from the kstatus conditions the
-- operator writes: Ready (always, once reconciled), Reconciling and Stalled (only when true).
--   Healthy      Ready=True for the current generation. RefreshFailing is Healthy too: the
--                token in the Secret still works, and the message says until when.
--   Degraded     Stalled=True (needs the user) or Ready=False (no valid token), for the
--                current generation.
--   Suspended    spec.suspend with no valid token (Ready=False, reason Suspended).
--   Progressing  not reconciled yet, status written for an older generation, or the first
--                token still being issued.
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

if obj.status == nil or (obj.status.observedGeneration == nil and obj.status.conditions == nil) then
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
local stalled = findCondition(obj.status.conditions, "Stalled")
local reconciling = findCondition(obj.status.conditions, "Reconciling")

if isCurrent(stalled) and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

if isCurrent(ready) and ready.status == "False" then
  if ready.reason == "Suspended" then
    hs.status = "Suspended"
  else
    hs.status = "Degraded"
  end
  hs.message = describe(ready)
  return hs
end

if isCurrent(ready) and ready.status == "True" and observedGeneration >= generation then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
if isCurrent(reconciling) and reconciling.status == "True" then
  hs.message = describe(reconciling)
elseif isCurrent(ready) and ready.status == "Unknown" then
  hs.message = describe(ready)
elseif observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
else
  hs.message = "Waiting for the operator to issue the first token"
end
return hs
