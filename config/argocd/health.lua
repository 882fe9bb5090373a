-- Argo CD health for every ecr.operator.dev kind (Argo CD has no generic health for custom
-- resources). Healthy: Ready=True observed at the current generation. Progressing: the operator
-- has not seen this generation yet, or the reason is one it retries (or waits out) on its own.
-- Degraded: a reason that waits for a person (a spec change, a grant, a secret, an empty
-- repository), with the operator's message. Reasons: crates/core/src/api/conditions.rs.
local hs = { status = "Progressing", message = "Waiting for ecr-operator to reconcile" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local ready = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = ready.observedGeneration or obj.status.observedGeneration
if generation ~= nil and observed ~= generation then
  hs.message = "Generation " .. tostring(generation) .. " not observed yet (last observed: "
    .. tostring(observed) .. ")"
  return hs
end
local waits_for_a_person = {
  Invalid = true, Conflict = true, AccessDenied = true, Forbidden = true,
  LimitExceeded = true, SecretNotFound = true, RepositoryNotEmpty = true,
  AssumeRoleFailed = true,
}
hs.message = ready.message or ""
if ready.reason ~= nil and ready.reason ~= "" then
  hs.message = ready.reason .. ": " .. hs.message
end
if ready.status == "True" then
  hs.status = "Healthy"
elseif waits_for_a_person[ready.reason] then
  hs.status = "Degraded"
end
return hs
