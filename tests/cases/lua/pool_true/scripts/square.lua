#!/usr/bin/env lua
-- run(args, ctx) in a worker process
function run(args, ctx)
  return { square = item * item, scaled = item * args.scale, attempt = ctx.attempt }
end
