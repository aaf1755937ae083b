-- An example Lua step: summarise the `describe` step of workflows/demo.yaml.
-- A script either returns a value or defines run(args, ctx); this one defines run.
-- It sees the expression scope (vars, steps, item, index, env, run, workflow),
-- `args` (the step's other `with` values) and the `sluice` module.

function run(args, ctx)
  local evens, total = 0, 0
  for _, d in ipairs(steps.describe) do
    total = total + d.square
    if d.even then evens = evens + 1 end
  end
  -- the log line names the step itself (ctx.step is here too, if a script needs it)
  sluice.log.info(("%d squares (%d even, sum %d) written to %s")
    :format(#steps.describe, evens, total, args.report))
  return { count = #steps.describe, evens = evens, sum = total }
end
