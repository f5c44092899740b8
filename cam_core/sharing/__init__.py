"""How threads (the dashboard's sessions, the API's callers) share one model and one image's analysis.

Lock order, outermost first. A thread may wait on a later item while holding an earlier one, never the reverse:

0. A caller's own turn, where it bounds how many of its requests run at once (the dashboard's grid takes a
   `slots.FairSlots` turn per map). It is taken before any shared work, never while computing it, so a thread
   that waits for work another thread computes never holds up that thread's turn.
1. Shared work (`once.SharedWork`, `once.OnceMap`): a value one thread computes while others wait for that key
   alone. A computation waits only on keys of lower rank (an Analysis's mask scores on its clusters, its clusters on
   its activations), so waits never form a cycle.
2. One-time builds (an Explainer's inference copy and guided copy, an Analysis's layer pass): held for one build or
   one forward pass of one image.
3. A pass slot (`slots.PASSES`): admission of one model pass, first come first served. A thread holding a slot
   runs that pass and nothing else: it waits on nothing but the leaf locks below.
4. Leaf locks (a replica free list, a shared-work table, byte counters, the analysis cache's table): held for a few
   dictionary operations; code holding one calls nothing that takes a lock.

Sizes are published, not computed under locks: the analysis cache reads each Analysis's `nbytes` as a plain number
that the Analysis updates when it grows, so trimming the cache never waits for an analysis that is computing.
"""
