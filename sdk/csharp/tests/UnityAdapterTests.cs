// The Unity adapter under mono, against the UnityEngine stub: posted actions
// and completions run on the pumping thread, and so do the events of a real
// client (against `tandem dev`, TANDEM_BIN) attached to a TandemBehaviour.
using System;
using System.Collections.Generic;
using System.Reflection;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
using Tandem.Protocol;
using Tandem.Unity;

namespace Tandem.Tests
{
    [TestFixture]
    public class UnityAdapterTests
    {
        [Test]
        public void PostedActionsAndCompletionsRunOnThePumpingThread()
        {
            var pump = new EventPump();
            int mainThread = Thread.CurrentThread.ManagedThreadId;
            int ranOn = -1;
            string result = null;
            var tcs = new TaskCompletionSource<string>();
            pump.Then(tcs.Task, r => { result = r; ranOn = Thread.CurrentThread.ManagedThreadId; });
            Task.Run(() => tcs.SetResult("done")).Wait();
            Assert.IsNull(result, "nothing runs before Pump");
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (result == null && DateTime.UtcNow < deadline) pump.Pump();
            Assert.AreEqual("done", result);
            Assert.AreEqual(mainThread, ranOn);
        }

        [Test]
        public void AFailedTaskReachesOnError()
        {
            var pump = new EventPump();
            Exception got = null;
            pump.Then(Task.FromException<int>(new ServerException(ErrorCodes.NotFound, "no", false)), _ => Assert.Fail("onDone"), e => got = e);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (got == null && DateTime.UtcNow < deadline) pump.Pump();
            Assert.IsInstanceOf<ServerException>(got);
        }

        [Test]
        public void AnAttachedClientsEventsRunInUpdateOnThePumpingThread()
        {
            using (var server = DevServer.Start())
            {
                // Synchronous on purpose: this test's thread is the game's main thread, which pumps.
                int mainThread = Thread.CurrentThread.ManagedThreadId;
                var alice = E2E.Connect(E2E.Login(server, "alice").GetAwaiter().GetResult(), CodecKind.Json).GetAwaiter().GetResult();
                var bob = E2E.Connect(E2E.Login(server, "bob").GetAwaiter().GetResult(), CodecKind.Binary).GetAwaiter().GetResult();
                var behaviour = new TandemBehaviour();
                behaviour.Attach(bob);

                // What the handlers saw, and any run outside Update or on another thread (asserted below: an
                // exception in a handler would only be logged by Update).
                bool inUpdate = false;
                var ran = new List<string>();
                var wrong = new List<string>();
                MessageEvent message = null;
                Action<string> saw = what =>
                {
                    lock (ran)
                    {
                        ran.Add(what);
                        int t = Thread.CurrentThread.ManagedThreadId;
                        if (!Volatile.Read(ref inUpdate) || t != mainThread)
                            wrong.Add(what + " on thread " + t + (Volatile.Read(ref inUpdate) ? "" : ", outside Update"));
                    }
                };
                behaviour.Pump.Joined += ev => saw("joined " + string.Join(",", ev.Players));
                behaviour.Pump.Message += ev => { message = ev; saw("message"); };

                var ar = alice.JoinAsync(new JoinOptions { Mode = JoinMode.Create, RoomType = "relay" }).GetAwaiter().GetResult();
                var br = bob.JoinAsync(new JoinOptions { Mode = JoinMode.Join, RoomId = ar.Id }).GetAwaiter().GetResult();
                ar.SendAsync("chat", Encoding.UTF8.GetBytes("hello bob"), Delivery.Others).GetAwaiter().GetResult();
                lock (ran) CollectionAssert.IsEmpty(ran, "a handler ran before the first Update");

                // Frames, as Unity's player loop calls Update on the main thread.
                var update = typeof(TandemBehaviour).GetMethod("Update", BindingFlags.Instance | BindingFlags.NonPublic);
                var deadline = DateTime.UtcNow + E2E.Deadline;
                while (Volatile.Read(ref message) == null && DateTime.UtcNow < deadline)
                {
                    Volatile.Write(ref inUpdate, true);
                    update.Invoke(behaviour, null);
                    Volatile.Write(ref inUpdate, false);
                    Thread.Sleep(5); // the next frame
                }
                lock (ran)
                {
                    CollectionAssert.AreEqual(new[] { "joined " + alice.PlayerId + "," + bob.PlayerId, "message" }, ran);
                    CollectionAssert.IsEmpty(wrong);
                }
                Assert.AreSame(br, message.Room);
                Assert.AreEqual(alice.PlayerId, message.From);
                Assert.AreEqual("hello bob", Encoding.UTF8.GetString(message.Data));

                // Destroying the object closes the client.
                typeof(TandemBehaviour).GetMethod("OnDestroy", BindingFlags.Instance | BindingFlags.NonPublic).Invoke(behaviour, null);
                Assert.IsNull(behaviour.Pump.Client);
                Assert.IsInstanceOf<ClientClosedException>(E2E.Next<ClosedEvent>(bob).GetAwaiter().GetResult().Error);
                E2E.CloseAndExpectClosed(alice).GetAwaiter().GetResult();
            }
        }

        [Test]
        public void TheBehaviourCompilesAgainstTheStub()
        {
            var b = new TandemBehaviour();
            Assert.IsNull(b.Pump.Client);
            Assert.AreEqual(0, b.Pump.Pump());
        }
    }
}
