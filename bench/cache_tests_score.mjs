// Score raw cache-tests results with the suite's own determineTestResult.
//
//   node bench/cache_tests_score.mjs build/cache-tests/isr.json [more.json ...]   (text)
//   node bench/cache_tests_score.mjs --json build/cache-tests/isr.json ...        (JSON)
//
// The input is what the vendored CLI prints ({test-id: true | [errtype, message]}). Every
// test the CLI ran (those with a result) is classified by determineTestResult (with
// dependencies honoured, as cache-tests.fyi does) into pass, fail (required), optional_fail,
// yes/no (kind "check"), setup_fail, harness_fail, dependency_fail or retry.
import fs from 'node:fs'
import path from 'node:path'

import tests from '../tests/cache-tests/tests/index.mjs'
import { determineTestResult, resultTypes } from '../tests/cache-tests/test-engine/lib/results.mjs'

const CATEGORIES = Object.keys(resultTypes).filter(k => k !== 'untested')

function categoryOf (rt) {
  for (const [name, value] of Object.entries(resultTypes)) {
    if (value === rt) return name
  }
  return 'unknown'
}

function describe (result) {
  if (result === true) return ''
  if (Array.isArray(result)) return `${result[0]}: ${result[1]}`
  return String(result)
}

// honorDependencies = true is how cache-tests.fyi shows results: a test whose depends_on did
// not pass is a dependency failure whatever its own result. false is how the CLI itself scores
// a single test (cli.mjs): each test on its own result.
export function score (results, honorDependencies = true) {
  const counts = Object.fromEntries(CATEGORIES.map(c => [c, 0]))
  const bySuite = []
  const requiredFailures = []
  const stale = []
  const unknownIds = Object.keys(results).filter(id => {
    return !tests.some(s => s.tests.some(t => t.id === id))
  })
  let total = 0
  for (const suite of tests) {
    const s = { id: suite.id, name: suite.name, total: 0 }
    for (const c of CATEGORIES) s[c] = 0
    for (const test of suite.tests) {
      if (!(test.id in results)) continue // not run (browser_only) or missing
      const cat = categoryOf(determineTestResult(tests, test.id, results, honorDependencies))
      total++
      s.total++
      counts[cat] = (counts[cat] || 0) + 1
      s[cat] = (s[cat] || 0) + 1
      const entry = { id: test.id, depends_on: test.depends_on || [], suite: suite.name, kind: test.kind || 'required', result: cat, detail: describe(results[test.id]), name: test.name }
      if (cat === 'fail') requiredFailures.push(entry)
      if (test.id.toLowerCase().includes('stale')) stale.push(entry)
    }
    if (s.total) bySuite.push(s)
  }
  return { total, counts, bySuite, requiredFailures, stale, unknownIds }
}

function textReport (target, sc) {
  const c = sc.counts
  const n = sc.noDeps.counts
  const out = []
  out.push(`== ${target}: ${sc.total} tests (counts without dependencies in brackets)`)
  out.push(`   pass ${c.pass} [${n.pass}]   required failures ${c.fail} [${n.fail}]` +
           `   optional failures ${c.optional_fail} [${n.optional_fail}]` +
           `   check yes ${c.yes} [${n.yes}] / no ${c.no} [${n.no}]`)
  out.push(`   setup failures ${c.setup_fail} [${n.setup_fail}]   harness failures ${c.harness_fail}` +
           ` [${n.harness_fail}]   dependency failures ${c.dependency_fail}   retry ${c.retry} [${n.retry}]`)
  if (sc.unknownIds.length) out.push(`   (ids not in the suite: ${sc.unknownIds.join(', ')})`)
  out.push(`-- required failures (${sc.requiredFailures.length}; each test on its own result:` +
           ` ${sc.noDeps.requiredFailures.length})`)
  let suite = null
  for (const f of sc.noDeps.requiredFailures) {
    if (f.suite !== suite) { suite = f.suite; out.push(`   [${suite}]`) }
    const counted = sc.requiredFailures.some(g => g.id === f.id) ? '' : ' (counted as dependency_fail)'
    out.push(`     ${f.id}: ${f.detail}${counted}`)
  }
  out.push(`-- tests whose id contains 'stale' (${sc.stale.length})`)
  out.push('     (suite result, then the test\'s own result without dependencies)')
  for (const f of sc.stale) {
    const own = sc.noDeps.stale.find(g => g.id === f.id)
    out.push(`     ${f.result.padEnd(15)} ${(own ? own.result : '?').padEnd(13)} ${f.id}` +
             `${f.detail ? ' - ' + f.detail : ''}`)
  }
  return out.join('\n')
}

const args = process.argv.slice(2)
const asJson = args[0] === '--json'
const files = asJson ? args.slice(1) : args
if (!files.length) {
  console.error('usage: node bench/cache_tests_score.mjs [--json] RESULTS.json ...')
  process.exit(2)
}
const all = {}
for (const f of files) {
  const target = path.basename(f).replace(/\.json$/, '')
  const results = JSON.parse(fs.readFileSync(f, 'utf8'))
  all[target] = score(results, true)
  all[target].noDeps = score(results, false)
}
if (asJson) {
  console.log(JSON.stringify(all, null, 2))
} else {
  console.log(Object.entries(all).map(([t, sc]) => textReport(t, sc)).join('\n\n'))
}
