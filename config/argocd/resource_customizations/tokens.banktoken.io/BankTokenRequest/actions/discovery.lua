-- Argo CD resource actions of a tokens.banktoken.io BankTokenRequest.
-- refresh asks for a new token now; it is disabled while the request is suspended, when the
-- operator calls no bank.
local actions = {}
actions["refresh"] = {
  ["displayName"] = "Refresh token",
  ["iconClass"] = "fa fa-fw fa-rotate-right",
  ["disabled"] = obj.spec ~= nil and obj.spec.suspend == true,
}
return actions
