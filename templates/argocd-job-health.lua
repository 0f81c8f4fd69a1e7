-- mlgen: Argo CD's health of a batch/v1 Job, for Jobs that a queue (Kueue) suspends.
-- Argo CD's built-in check counts any Suspended condition as finished, so a Job admitted
-- and still running reads Healthy and the next sync wave starts too soon. Here a Job is
-- Healthy only once Complete, Degraded once Failed, and Progressing before (queued too).
local hs = {status = "Progressing", message = "Job is running"}
local failed, complete, suspended = nil, nil, false
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.status == "True" then
      if c.type == "Failed" then failed = c end
      if c.type == "Complete" then complete = c end
      if c.type == "Suspended" then suspended = true end
    end
  end
end
if failed ~= nil then
  return {status = "Degraded", message = failed.message or failed.reason or "Job failed"}
end
if complete ~= nil then
  return {status = "Healthy", message = complete.message or "Job completed"}
end
if suspended or (obj.spec ~= nil and obj.spec.suspend == true) then
  hs.message = "Job is suspended: queued, waiting for admission"
end
return hs
