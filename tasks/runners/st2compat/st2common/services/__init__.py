"""StackStorm's ``st2common.services`` names that Patchbay actions and sensors use."""
