// Package Tandem.Unity is the thin Unity adapter of the Tandem SDK: it runs
// the client's events and the completions of its requests on Unity's main
// thread, where game code may touch the engine. The core (Tandem) never
// calls Unity.
using System;
using System.Collections.Concurrent;
using System.Threading.Tasks;

namespace Tandem.Unity
{
    /// <summary>
    /// Hands the events of a TandemClient, and the actions other threads post, to one thread: the one that
    /// calls Pump (TandemBehaviour calls it from Update). Handlers run in stream order.
    /// </summary>
    public sealed class EventPump
    {
        readonly ConcurrentQueue<Action> posted = new ConcurrentQueue<Action>();
        TandemClient client;

        public event Action<TandemEvent> Event;
        public event Action<JoinedEvent> Joined;
        public event Action<MessageEvent> Message;
        public event Action<SnapshotEvent> Snapshot;
        public event Action<DeltaEvent> Delta;
        public event Action<RoomMemberEvent> Member;
        public event Action<GapEvent> Gap;
        public event Action<LeftEvent> Left;
        public event Action<NoticeEvent> Notice;
        public event Action<TicketUpdateEvent> TicketUpdate;
        public event Action<ErrorEvent> Error;
        public event Action<DisconnectedEvent> Disconnected;
        public event Action<ResumedEvent> Resumed;
        public event Action<SessionLostEvent> SessionLost;
        public event Action<ClosedEvent> Closed;

        public TandemClient Client { get { return client; } }

        /// <summary>Pumps this client's events from now on (null: none).</summary>
        public void Attach(TandemClient c) { client = c; }

        /// <summary>Runs a on the pumping thread, at its next Pump. Safe from any thread.</summary>
        public void Post(Action a) { posted.Enqueue(a); }

        /// <summary>Runs onDone (or onError) on the pumping thread once task completes.</summary>
        public void Then<T>(Task<T> task, Action<T> onDone, Action<Exception> onError = null)
        {
            task.ContinueWith(t => Post(() =>
            {
                if (t.IsFaulted || t.IsCanceled)
                {
                    if (onError != null) onError(t.IsFaulted ? t.Exception.GetBaseException() : new OperationCanceledException());
                }
                else if (onDone != null) onDone(t.Result);
            }), TaskContinuationOptions.ExecuteSynchronously);
        }

        /// <summary>Runs onDone (or onError) on the pumping thread once task completes.</summary>
        public void Then(Task task, Action onDone, Action<Exception> onError = null)
        {
            Then(task.ContinueWith(t =>
            {
                if (t.IsFaulted) throw t.Exception.GetBaseException();
                if (t.IsCanceled) throw new OperationCanceledException();
                return true;
            }, TaskContinuationOptions.ExecuteSynchronously), _ => { if (onDone != null) onDone(); }, onError);
        }

        /// <summary>Runs the posted actions, then hands every queued event to the handlers. Returns how many ran.</summary>
        public int Pump(int maxEvents = int.MaxValue)
        {
            int n = 0;
            Action a;
            while (posted.TryDequeue(out a))
            {
                a();
                n++;
            }
            var c = client;
            TandemEvent ev;
            for (int i = 0; c != null && i < maxEvents && c.TryGetEvent(out ev); i++)
            {
                Dispatch(ev);
                n++;
            }
            return n;
        }

        void Dispatch(TandemEvent ev)
        {
            var all = Event;
            if (all != null) all(ev);
            if (Fire(Joined, ev as JoinedEvent) || Fire(Message, ev as MessageEvent) || Fire(Snapshot, ev as SnapshotEvent) ||
                Fire(Delta, ev as DeltaEvent) || Fire(Member, ev as RoomMemberEvent) || Fire(Gap, ev as GapEvent) ||
                Fire(Left, ev as LeftEvent) || Fire(Notice, ev as NoticeEvent) || Fire(TicketUpdate, ev as TicketUpdateEvent) ||
                Fire(Error, ev as ErrorEvent) || Fire(Disconnected, ev as DisconnectedEvent) || Fire(Resumed, ev as ResumedEvent) ||
                Fire(SessionLost, ev as SessionLostEvent) || Fire(Closed, ev as ClosedEvent))
                return;
        }

        static bool Fire<T>(Action<T> handler, T ev) where T : TandemEvent
        {
            if (ev == null) return false;
            if (handler != null) handler(ev);
            return true;
        }
    }
}
