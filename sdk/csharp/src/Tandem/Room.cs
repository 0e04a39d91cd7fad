using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Tandem.Protocol;

namespace Tandem
{
    /// <summary>A room the client joined. Its frames arrive as events; Send and Leave act on it.</summary>
    public sealed class Room
    {
        readonly TandemClient client;
        internal readonly Session Session; // the session that joined it
        readonly TaskCompletionSource<Exception> left =
            new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        internal byte[] state = new byte[0];
        internal Exception Err; // why the room is no longer joined (under the client's lock)

        internal Room(TandemClient client, Session session, string id, string type)
        {
            this.client = client;
            Session = session;
            Id = id;
            Type = type;
        }

        public string Id { get; private set; }
        public string Type { get; private set; }

        /// <summary>The last full state: joined.state, or a later snapshot or gap.</summary>
        public byte[] State { get { lock (client.Mu) return state; } }

        /// <summary>Completes when the client is no longer in the room.</summary>
        public Task Left { get { return left.Task; } }

        internal void Gone(Exception err)
        {
            if (Err != null) return;
            Err = err;
            left.TrySetResult(err);
        }

        /// <summary>Sends a room message (reliable). Errors of the server arrive as ErrorEvent.</summary>
        public Task SendAsync(string topic, byte[] data, Delivery delivery = Delivery.All, IEnumerable<string> to = null)
        {
            var m = new RoomMessage { RoomId = Id, Topic = topic ?? "", Data = data ?? new byte[0], Delivery = delivery };
            if (to != null) m.To.AddRange(to);
            return client.SendReliableAsync(new Envelope { Body = m }, null, this);
        }

        /// <summary>Leaves the room and waits until the server says so.</summary>
        public async Task LeaveAsync(CancellationToken ct = default(CancellationToken))
        {
            var p = new Pending();
            try
            {
                await client.SendReliableAsync(new Envelope { Body = new Leave { RoomId = Id } }, p, this).ConfigureAwait(false);
            }
            catch (RoomLeftException)
            {
                return;
            }
            var tcs = new TaskCompletionSource<bool>();
            using (ct.Register(() => tcs.TrySetCanceled()))
            {
                var done = await Task.WhenAny(left.Task, p.Reply.Task, tcs.Task).ConfigureAwait(false);
                client.Forget(p);
                if (done == left.Task)
                {
                    var err = left.Task.Result;
                    if (err is RoomLeftException) return;
                    throw err;
                }
                await done.ConfigureAwait(false); // the error reply, or cancellation
            }
        }
    }
}
