// A stub of the few UnityEngine types the Tandem.Unity adapter uses, so that
// it compiles and its tests run under mono without Unity. Only signatures
// matter; the real engine supplies the behaviour.
using System;

namespace UnityEngine
{
    public class Object
    {
        public string name = "";
    }

    public class Component : Object { }

    public class Behaviour : Component
    {
        public bool enabled = true;
    }

    public class MonoBehaviour : Behaviour { }

    public static class Debug
    {
        public static Action<string> Sink = s => Console.Error.WriteLine(s);

        public static void Log(object message) { Sink("[log] " + message); }
        public static void LogWarning(object message) { Sink("[warning] " + message); }
        public static void LogError(object message) { Sink("[error] " + message); }
    }
}
