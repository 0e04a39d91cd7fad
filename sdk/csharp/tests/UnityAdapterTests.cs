using System;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
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
        public void TheBehaviourCompilesAgainstTheStub()
        {
            var b = new TandemBehaviour();
            Assert.IsNull(b.Pump.Client);
            Assert.AreEqual(0, b.Pump.Pump());
        }
    }
}
