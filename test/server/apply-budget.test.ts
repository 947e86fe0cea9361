// The apply budget of the Ready loop (node/server/apply-budget.ts): a Ready
// hands out as many committed bytes as apply in about the target time, by
// the recent cost per byte, within its bounds.
import test from "ava";
import { ApplyBudget } from "../../node/server/apply-budget.js";

test("before any apply is measured the budget is the byte cap", (t) => {
  t.is(new ApplyBudget(10, 4096, 32768).bytes, 32768);
});

test("a costly apply shrinks the next Readies to what fits the target time; a cheap one lets them grow back", (t) => {
  const b = new ApplyBudget(10, 1024, 32768);
  b.observe(32768, 70); // 45 registrations in 70 ms
  t.is(b.bytes, Math.floor(10 * 32768 / 70), "a Ready of registrations is split: ~10 ms of them per Ready");
  for (let i = 0; i < 40; i++) b.observe(4000, 0.5);
  t.is(b.bytes, 32768, "cheap entries again: back to the cap");
});

test("the budget stays within its bounds, and bad bounds are refused", (t) => {
  const b = new ApplyBudget(10, 4096, 32768);
  b.observe(100, 1000);
  t.is(b.bytes, 4096, "never below the floor, however slow");
  b.observe(1_000_000, 0);
  t.true(b.bytes <= 32768);
  t.throws(() => new ApplyBudget(0, 1, 2));
  t.throws(() => new ApplyBudget(10, 0, 2));
  t.throws(() => new ApplyBudget(10, 4, 2));
});

test("recent Readies weigh more than old ones", (t) => {
  const b = new ApplyBudget(10, 1, 1_000_000);
  for (let i = 0; i < 50; i++) b.observe(1000, 1); // 1 ms per KB
  const before = b.bytes;
  for (let i = 0; i < 5; i++) b.observe(1000, 10); // now 10 ms per KB
  t.true(b.bytes < before / 3, `${before} -> ${b.bytes}`);
});
