using UnityEngine;

namespace Tandem.Unity
{
    /// <summary>
    /// Add to a GameObject and Attach a client: its events and posted completions run in Update, on the main
    /// thread. Destroying the object closes the client.
    /// </summary>
    public class TandemBehaviour : MonoBehaviour
    {
        public readonly EventPump Pump = new EventPump();

        /// <summary>Events handed over per frame, so that a burst does not stall one frame.</summary>
        public int MaxEventsPerFrame = 256;

        public void Attach(TandemClient client) { Pump.Attach(client); }

        void Update()
        {
            try
            {
                Pump.Pump(MaxEventsPerFrame);
            }
            catch (System.Exception e)
            {
                Debug.LogError("Tandem: an event handler failed: " + e);
            }
        }

        void OnDestroy()
        {
            var c = Pump.Client;
            Pump.Attach(null);
            if (c != null) c.CloseAsync();
        }
    }
}
