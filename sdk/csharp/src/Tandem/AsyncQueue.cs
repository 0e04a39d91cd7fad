using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Tandem
{
    /// <summary>An unbounded FIFO that readers can await; Complete ends it once drained.</summary>
    sealed class AsyncQueue<T> where T : class
    {
        readonly object mu = new object();
        readonly Queue<T> items = new Queue<T>();
        readonly LinkedList<TaskCompletionSource<T>> waiters = new LinkedList<TaskCompletionSource<T>>();
        bool completed;

        public int Count { get { lock (mu) return items.Count; } }

        public bool Enqueue(T item)
        {
            TaskCompletionSource<T> w = null;
            lock (mu)
            {
                if (completed) return false;
                if (waiters.Count > 0)
                {
                    w = waiters.First.Value;
                    waiters.RemoveFirst();
                }
                else items.Enqueue(item);
            }
            if (w != null) w.TrySetResult(item);
            return true;
        }

        public bool TryDequeue(out T item)
        {
            lock (mu)
            {
                if (items.Count > 0)
                {
                    item = items.Dequeue();
                    return true;
                }
            }
            item = null;
            return false;
        }

        /// <summary>The next item; null once completed and drained.</summary>
        public async Task<T> DequeueAsync(CancellationToken ct)
        {
            TaskCompletionSource<T> w;
            lock (mu)
            {
                if (items.Count > 0) return items.Dequeue();
                if (completed) return null;
                w = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
                waiters.AddLast(w);
            }
            using (ct.Register(() =>
            {
                lock (mu) waiters.Remove(w);
                w.TrySetCanceled();
            }))
                return await w.Task.ConfigureAwait(false);
        }

        /// <summary>No more items: readers get null once the queue is drained.</summary>
        public void Complete()
        {
            List<TaskCompletionSource<T>> ws;
            lock (mu)
            {
                if (completed) return;
                completed = true;
                ws = new List<TaskCompletionSource<T>>(waiters);
                waiters.Clear();
            }
            foreach (var w in ws) w.TrySetResult(null);
        }
    }
}
