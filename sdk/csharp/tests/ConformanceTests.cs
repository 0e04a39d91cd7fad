// The conformance suite (conformance/README.md) with this SDK: every file
// of conformance/scenarios is a test case, run by ScenarioDriver against
// the harness server (TANDEM_HARNESS_BIN), and one more test fails when any
// file was not run to its end, so that no scenario is skipped unnoticed.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Tandem.Tests
{
    [TestFixture]
    public class ConformanceTests
    {
        /// <summary>
        /// Scenarios run at once (the harness allows 4). One: the scenarios share this process, and one that
        /// floods a client (slow_consumer) needs its fast reader to keep up with the node on this 2-core machine.
        /// </summary>
        const int Parallel = 1;

        /// <summary>How one scenario ran: to its end, or the failure that stopped it.</summary>
        public sealed class Outcome
        {
            public bool RanToEnd;
            public string Failure;
        }

        Harness harness;
        readonly SemaphoreSlim slots = new SemaphoreSlim(Parallel);
        readonly Dictionary<string, Task<Outcome>> runs = new Dictionary<string, Task<Outcome>>();

        static string ScenarioDir()
        {
            for (var d = new DirectoryInfo(AppDomain.CurrentDomain.BaseDirectory); d != null; d = d.Parent)
            {
                var s = Path.Combine(d.FullName, "conformance", "scenarios");
                if (Directory.Exists(s)) return s;
            }
            throw new DirectoryNotFoundException("conformance/scenarios not found above " + AppDomain.CurrentDomain.BaseDirectory);
        }

        /// <summary>Every scenario file's name, without .json, in name order.</summary>
        public static IEnumerable<string> Names()
        {
            return Directory.GetFiles(ScenarioDir(), "*.json").Select(Path.GetFileNameWithoutExtension).OrderBy(n => n, StringComparer.Ordinal);
        }

        [TestFixtureSetUp]
        public void StartHarness() { harness = Harness.Start(ScenarioDir()); }

        [TestFixtureTearDown]
        public void StopHarness()
        {
            if (harness != null) harness.Dispose();
        }

        /// <summary>
        /// Runs a scenario once, whichever test asks first (the rest wait for the same run): the tests may run
        /// in any order, and the check of every file starts those not run yet, Parallel at a time.
        /// </summary>
        Task<Outcome> Run(string name)
        {
            lock (runs)
            {
                Task<Outcome> t;
                if (!runs.TryGetValue(name, out t)) runs[name] = t = Task.Run(() => RunOne(name));
                return t;
            }
        }

        async Task<Outcome> RunOne(string name)
        {
            ConformanceScenario s;
            try
            {
                s = ConformanceScenario.Load(Path.Combine(ScenarioDir(), name + ".json"));
            }
            catch (Exception e)
            {
                return new Outcome { Failure = "cannot run: " + e.Message };
            }
            await slots.WaitAsync().ConfigureAwait(false);
            var took = Stopwatch.StartNew();
            try
            {
                HarnessScenario hs;
                try { hs = await HarnessScenario.Start(harness, name).ConfigureAwait(false); }
                catch (Exception e) { return new Outcome { Failure = "cannot start: " + e.Message }; }
                var d = new ScenarioDriver(s, hs);
                Outcome o;
                try
                {
                    await d.Run().ConfigureAwait(false);
                    o = new Outcome { RanToEnd = true };
                }
                catch (Exception e)
                {
                    o = new Outcome { Failure = e is StepFailure ? e.Message : e.ToString() };
                }
                try { await d.Cleanup().ConfigureAwait(false); }
                catch (Exception e)
                {
                    o = new Outcome { Failure = (o.Failure != null ? o.Failure + "; " : "") + "cleanup: " + e.Message };
                }
                Console.WriteLine("conformance: " + name + (o.RanToEnd ? " passed" : " FAILED") + " in " + took.Elapsed.TotalSeconds.ToString("0.0") + " s");
                return o;
            }
            finally
            {
                slots.Release();
            }
        }

        [Test, TestCaseSource("Names")]
        public async Task Scenario(string name)
        {
            var o = await Run(name);
            if (!o.RanToEnd) Assert.Fail(o.Failure);
        }

        /// <summary>Every file runs to its end: a file the driver cannot load, start or finish fails the suite.</summary>
        [Test]
        public async Task EveryScenarioRunsToItsEnd()
        {
            var names = Names().ToList();
            Assert.IsNotEmpty(names, "no scenarios in " + ScenarioDir());
            var outcomes = await Task.WhenAll(names.Select(Run));
            var bad = names.Where((n, i) => !outcomes[i].RanToEnd).Select(n => n + ": " + outcomes[names.IndexOf(n)].Failure).ToList();
            if (bad.Count > 0) Assert.Fail(bad.Count + " of " + names.Count + " scenarios did not run to their end:\n" + string.Join("\n", bad));
        }
    }
}
