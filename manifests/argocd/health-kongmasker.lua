-- Argo CD health check for kongmasker.io KongMaskerStack and StackBackup.
-- Reads the operator's own vocabulary: observedGeneration first (a status older than the
-- spec says nothing about the spec), then the Degraded / Ready / Progressing conditions,
-- then the phase for StackBackup. Argo CD evaluates it with `obj` bound to the resource.
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "The operator has not yet observed generation " .. generation
  return hs
end
if obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = "Reconciliation is paused (spec.paused)"
  return hs
end
if obj.spec ~= nil and obj.spec.hibernated == true then
  if obj.status.phase == "Hibernated" then
    hs.status = "Suspended"
    hs.message = "Hibernated (spec.hibernated): stopped, data volume kept"
  else
    hs.message = "Hibernating: stopping the stack"
  end
  return hs
end
local byType = {}
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    byType[c.type] = c
  end
end
local function say(status, c)
  hs.status = status
  hs.message = (c.reason or "") .. ": " .. (c.message or "")
  return hs
end
if byType["Degraded"] ~= nil and byType["Degraded"].status == "True" then
  return say("Degraded", byType["Degraded"])
end
if obj.kind == "StackBackup" then
  local phase = obj.status.phase
  if phase == "Failed" or phase == "Invalid" or phase == "PartiallyFailed" then
    hs.status = "Degraded"
    hs.message = phase .. ": " .. (obj.status.failureReason or "")
    return hs
  end
  if phase == "Completed" or phase == "Validated" or phase == "Restored" or phase == "Scheduled" then
    hs.status = "Healthy"
    hs.message = phase
    return hs
  end
  hs.message = phase or hs.message
  return hs
end
if byType["Ready"] ~= nil and byType["Ready"].status == "True" then
  return say("Healthy", byType["Ready"])
end
if byType["Ready"] ~= nil then
  return say("Progressing", byType["Ready"])
end
return hs
