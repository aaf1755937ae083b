#!/usr/bin/env lua
-- A script defining run(args, ctx): called once per task.
local function square(n)
  return n * n
end

function run(args, ctx)
  sluice.log.warn("squaring", ctx.item, "in", ctx.step, "attempt", ctx.attempt)
  local decoded = sluice.json.decode(sluice.json.encode({ v = square(ctx.item) }))
  return {
    value = decoded.v + args.offset,
    index = ctx.index,
    run_id_set = type(ctx.run.id) == "string" and #ctx.run.id > 0,
    workflow = workflow.name,
  }
end
